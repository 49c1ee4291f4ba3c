import { BridgeFeed, type FeedStats } from '../bridge/bridge-feed.ts';
import type { AudioSource } from '../media-path/mixer.ts';
import type { CallSession, CallTap, CloseReason } from '../sessions/call-session.ts';
import type { ConferenceMember } from './member.ts';

/** What a phone member hears, as a source of its call's mixer (beside the call's own prompts). */
class HeardFrame implements AudioSource {
  frame: Int16Array | null = null;
  shared = false;
  readonly #encodedShared: (codec: 'PCMU' | 'PCMA') => Uint8Array;

  constructor(encodedShared: (codec: 'PCMU' | 'PCMA') => Uint8Array) {
    this.#encodedShared = encodedShared;
  }

  mixInto(acc: Int32Array): boolean {
    const f = this.frame;
    if (!f) return false;
    for (let i = 0; i < acc.length; i++) acc[i]! += f[i]!;
    return true;
  }

  encoded(codec: 'PCMU' | 'PCMA'): Uint8Array | null {
    return this.shared && this.frame ? this.#encodedShared(codec) : null;
  }
}

/**
 * A phone call in a conference. Its caller frames go through the same jitter-absorbing feed
 * a bridge uses; what it hears is one more source of its call's mixer. While it is a member,
 * the conference ticks the call (right after the mix), not the clock.
 */
export class PhoneMember implements ConferenceMember {
  readonly kind = 'phone' as const;
  readonly session: CallSession;
  readonly #feed = new BridgeFeed();
  readonly #heard: HeardFrame;
  readonly #tap: CallTap;

  /** `conferenceId` null: a bridge, which is no conference to the platform. */
  constructor(session: CallSession, opts: { conferenceId: string | null; encodedShared: (codec: 'PCMU' | 'PCMA') => Uint8Array; callEnded: (reason: CloseReason) => void }) {
    this.session = session;
    this.#heard = new HeardFrame(opts.encodedShared);
    this.#tap = { inbound: (f) => this.#feed.push(f), callClosed: (reason) => opts.callEnded(reason) };
    if (opts.conferenceId !== null) session.conferenceId = opts.conferenceId;
    session.addTap(this.#tap);
    session.addSource(this.#heard);
    session.driveFrom(true);
  }

  get callId(): string {
    return this.session.callId;
  }

  get stats(): FeedStats {
    return this.#feed.stats;
  }

  take(): Int16Array | null {
    return this.#feed.take();
  }

  hear(frame: Int16Array | null, shared: boolean): void {
    this.#heard.frame = frame;
    this.#heard.shared = shared;
  }

  flush(nowMs: number): void {
    if (!this.session.closed) this.session.tick(nowMs);
    this.#heard.frame = null;
  }

  detach(): void {
    const s = this.session;
    s.removeTap(this.#tap);
    s.removeSource(this.#heard);
    s.conferenceId = null;
    s.driveFrom(false);
  }
}
