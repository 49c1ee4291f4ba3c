import type { Logger } from '../logging/logger.ts';
import type { AudioSource } from '../media-path/mixer.ts';
import type { CallTap, CloseReason } from './call-session.ts';

/**
 * What listeners (recorders, forks) need of what they listen to: a call, or a conference's
 * mix. `callId` names it in their events and files; `port` is 0 for a conference.
 */
export interface TapHost {
  readonly callId: string;
  readonly traceId: string;
  readonly tenantId: string;
  readonly port: number;
  readonly log: Logger;
  readonly closed: boolean;
  readonly closeReason: CloseReason | null;
  addTap(tap: CallTap): void;
  removeTap(tap: CallTap): void;
}

/** What injected audio needs: a mix to play into, and to hear when it ends. */
export interface SourceHost extends TapHost {
  addSource(source: AudioSource): void;
  removeSource(source: AudioSource): void;
  /** A source just queued audio: a talk spurt may start sooner (see CallSession). */
  audioQueued(): void;
  on(event: 'close', listener: (reason: CloseReason) => void): unknown;
  off(event: 'close', listener: (reason: CloseReason) => void): unknown;
}
