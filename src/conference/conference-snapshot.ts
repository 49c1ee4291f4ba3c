import type { CreateConference } from './conferences.ts';

/** A phone participant as a restarted process needs it: its call, and how it was set. */
export interface SeatSnapshot {
  participantId: string;
  callId: string;
  muted: boolean;
  deaf: boolean;
  gainDb: number;
  /** Its call is carried by another process and joined over a frame link. */
  remote: boolean;
}

/**
 * What a restarted shard needs to make a conference again: how it was created and its phone
 * participants. Browsers rejoin by themselves; prompts and test legs end with the process.
 */
export interface ConferenceSnapshot {
  create: CreateConference;
  createdAtUnixMs: number;
  phones: SeatSnapshot[];
}
