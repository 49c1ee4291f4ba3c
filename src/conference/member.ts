/** A test leg stands in for a phone: a prompt played by a browser's request. */
import type { FeedStats } from '../bridge/bridge-feed.ts';

export type MemberKind = 'phone' | 'browser' | 'test-leg';

/**
 * Something that takes part in a conference's mix: it gives one 20 ms frame per tick
 * (through the jitter/playout policy of its own input) and hears one. The conference owns
 * the member from join to leave and closes it once.
 */
export interface ConferenceMember {
  readonly kind: MemberKind;
  /** The call this member is, when it is one (events and logs name it). */
  readonly callId: string | null;
  /** This tick's input at 8 kHz, or null (nothing arrived, a gap, or playout waiting). */
  take(): Int16Array | null;
  /**
   * What the member hears on this tick: `frame` (null: silence) is only valid during the
   * call, `shared` says it is the frame every listener who did not talk hears.
   */
  hear(frame: Int16Array | null, shared: boolean): void;
  /** Every member heard its frame: a phone sends its packet now. */
  flush(nowMs: number): void;
  /** The member leaves the mix: everything it added to its call is taken back. */
  detach(): void;
  /** Its input feed's figures (phones): frames in, dropped, trimmed, underruns. */
  readonly stats?: FeedStats;
  /** A name to list it by (a browser's display name). */
  readonly displayName?: string;
  /** Muted or deaf beyond the mix (a browser's tracks in the SFU). */
  setMuted?(muted: boolean): void;
  setDeaf?(deaf: boolean): void;
  /** Ends its leg (a browser is disconnected). */
  kick?(): void;
}

/** How a member left: removed or kicked by a request, its call ended, or the conference ended. */
/** `media_restarted`: the process carrying its call died; the call goes on and joins again once carried on. */
export type LeaveReason = 'removed' | 'kicked' | 'call_ended' | 'conference_ended' | 'media_restarted';
