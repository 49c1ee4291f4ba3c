import type { MediaErrorCode } from '../errors/media-error.ts';
import type { CallSnapshot } from '../sessions/call-snapshot.ts';
import type { ShardLoad } from './placement.ts';
import type { ParticipantState } from '../conference/conference.ts';
import type { LinkPeer } from '../bridge/frame-link.ts';
import type { ConferenceSnapshot } from '../conference/conference-snapshot.ts';
import type { DoorMessage } from './front-door-messages.ts';

/** The conference side of a leg across shards: a seat for a call another shard carries. */
export interface ConferenceSeat {
  conferenceId: string;
  participantId: string;
  callId: string;
  muted: boolean;
  deaf: boolean;
  gainDb: number;
}

/** What a shard tells its supervisor over the IPC channel. */
export type ShardMessage =
  /** Started: which calls of this slice should it carry on? */
  | { type: 'hello' }
  /** `servesConnections`: it can take client connections and serve its own calls' requests itself. */
  | { type: 'ready'; grpcSocket: string; httpSocket: string; servesConnections: boolean }
  | { type: 'load'; load: ShardLoad }
  /** Every live call's snapshot, twice a second. */
  | { type: 'snapshots'; calls: CallSnapshot[] }
  | { type: 'call-opened'; call: CallEntry; snapshot: CallSnapshot }
  | { type: 'call-closed'; callId: string; port: number }
  /** A call it was asked to carry on could not be. */
  | { type: 'call-lost'; callId: string; port: number; reason: string }
  /** Its half of a bridge across shards is bound (or could not be). */
  | { type: 'bridge-opened'; id: string; udpPort: number; participant?: ParticipantState }
  | { type: 'bridge-refused'; id: string; code: MediaErrorCode; message: string }
  /** Its half closed (unbridged, or its call ended): the other half must close too. */
  | { type: 'bridge-closed'; id: string; reason: string }
  /** One of its conferences ended: its id is free across instances again. */
  | { type: 'conference-ended'; conferenceId: string }
  /** One of its conferences was made or changed (who is in it, how they are set). */
  | { type: 'conference-state'; conference: ConferenceSnapshot }
  /** About a request on a client connection it holds: where does it go, how did it end. */
  | DoorMessage;

/** What the supervisor tells a shard. */
export type SupervisorMessage =
  /** The calls and conferences its previous process carried. */
  | { type: 'restore'; calls: CallSnapshot[]; conferences: ConferenceSnapshot[] }
  /**
   * Open this shard's half of a bridge: for the call on `port` (`inConference`: the other
   * side is that conference), or a seat in one of its conferences; `token` (base64) marks its
   * frames. `network`: the other half is on another machine (the link is sealed, and this
   * half takes `role`).
   */
  | { type: 'bridge-open'; id: string; port: number; token: string; peer: string; inConference?: string; seat?: ConferenceSeat; network?: { role: 0 | 1 } }
  | { type: 'bridge-connect'; id: string; peer: LinkPeer }
  /**
   * `release`: the other side kicked the call out of its conference: its media ends too.
   * `cut`: the other side's process died (its call goes on, and the leg is made again).
   */
  | { type: 'bridge-close'; id: string; release?: boolean; cut?: boolean };

/** A live call as the instance's directory knows it. */
export interface CallEntry {
  callId: string;
  port: number;
  traceId: string;
  tenantId: string;
}

/** Set by the supervisor in a shard's environment; never configured by hand. */
export const SHARD_INDEX_ENV = 'MEDIA_SHARD_INDEX';
export const SHARD_RUNTIME_DIR_ENV = 'MEDIA_SHARD_RUNTIME_DIR';

export function isShardMessage(m: unknown): m is ShardMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}
