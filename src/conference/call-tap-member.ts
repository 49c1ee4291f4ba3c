import { BridgeFeed, type FeedStats } from '../bridge/bridge-feed.ts';
import type { TimelineFrame } from '../media-path/inbound-timeline.ts';
import type { AudioSource } from '../media-path/mixer.ts';
import type { CallSession, CallTap, CloseReason } from '../sessions/call-session.ts';
import { FRAME_SAMPLES } from '../sessions/call-session.ts';
import type { ConferenceMember } from './member.ts';

/** What the call hears from the mix, kept for the call's own next tick. */
class Heard implements AudioSource {
  readonly frame = new Int16Array(FRAME_SAMPLES);
  any = false;

  mixInto(acc: Int32Array): boolean {
    if (!this.any) return false;
    const f = this.frame;
    for (let i = 0; i < acc.length; i++) acc[i]! += f[i]!;
    this.any = false;
    return true;
  }
}

/**
 * A call in a mix it does not own: a call's browser room. The call keeps its own clock (or
 * its bridge's, or its conference's); this member taps it. What it gives the mix is what the
 * call's party says plus what the service plays to that party (prompts, speech, a bridged
 * peer), summed before saturation; what it hears goes into the call's own mix, set aside, so
 * the room never gets its own voices back through the call.
 */
export class CallTapMember implements ConferenceMember, CallTap {
  readonly kind = 'phone' as const;
  readonly session: CallSession;
  readonly #feed = new BridgeFeed();
  readonly #heard = new Heard();
  readonly #service = new Int16Array(FRAME_SAMPLES);
  #serviceAny = false;
  readonly #out = new Int16Array(FRAME_SAMPLES);
  readonly #callEnded: (reason: CloseReason) => void;
  #detached = false;

  constructor(session: CallSession, opts: { callEnded: (reason: CloseReason) => void }) {
    this.session = session;
    this.#callEnded = opts.callEnded;
    session.addTap(this);
    session.addSource(this.#heard);
    session.setAside(this.#heard);
  }

  get callId(): string {
    return this.session.callId;
  }

  get stats(): FeedStats {
    return this.#feed.stats;
  }

  inbound(frame: TimelineFrame): void {
    this.#feed.push(frame);
  }

  outbound(frame: Int16Array | null): void {
    const service = frame ? this.session.heardWithoutAside : null;
    this.#serviceAny = service !== null;
    if (service) this.#service.set(service);
  }

  callClosed(reason: CloseReason): void {
    this.#callEnded(reason);
  }

  take(): Int16Array | null {
    const caller = this.#feed.take();
    const service = this.#serviceAny ? this.#service : null;
    this.#serviceAny = false;
    if (!caller && !service) return null;
    if (!service) return caller;
    const out = this.#out;
    if (!caller) {
      out.set(service);
      return out;
    }
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      const v = caller[i]! + service[i]!;
      out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
    return out;
  }

  hear(frame: Int16Array | null): void {
    // Valid only during the mix's tick; the call mixes it on its own next tick.
    if (frame) this.#heard.frame.set(frame);
    this.#heard.any = frame !== null;
  }

  flush(): void {}

  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    const s = this.session;
    s.removeTap(this);
    s.setAside(null);
    s.removeSource(this.#heard);
  }
}
