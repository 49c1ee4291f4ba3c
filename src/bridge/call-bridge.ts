import { performance } from 'node:perf_hooks';
import type { CallSession, CallTap, CloseReason } from '../sessions/call-session.ts';
import { TypedEmitter } from '../util/typed-emitter.ts';
import { BridgeFeed, type FeedStats } from './bridge-feed.ts';

export type BridgeCloseReason = 'unbridged' | 'call_closed' | 'shutdown';

/**
 * Two calls that hear each other. Each call's caller audio (its gap-free inbound frames) is
 * played into the other call's mix, beside whatever else plays there (prompts, injected
 * speech); each call encodes what it hears in its own codec, so a G.711 leg bridged to an
 * Opus leg is transcoded both ways with no step of its own.
 *
 * The bridge owns the link only: taps and sources it added to the calls, removed on close.
 * Either call ending closes the bridge; the other call carries on.
 */
export class CallBridge extends TypedEmitter<{ close: [BridgeCloseReason] }> {
  readonly a: CallSession;
  readonly b: CallSession;
  readonly createdAtMs = performance.now();
  /** What a's caller says, for b to hear; and the other way. */
  readonly #toB = new BridgeFeed();
  readonly #toA = new BridgeFeed();
  readonly #tapA: CallTap;
  readonly #tapB: CallTap;
  #closed = false;

  constructor(a: CallSession, b: CallSession) {
    super(a.log);
    this.a = a;
    this.b = b;
    const onClosed = (reason: CloseReason): void => this.close(reason === 'shutdown' ? 'shutdown' : 'call_closed');
    this.#tapA = { inbound: (f) => this.#toB.push(f), callClosed: onClosed };
    this.#tapB = { inbound: (f) => this.#toA.push(f), callClosed: onClosed };
    a.addTap(this.#tapA);
    b.addTap(this.#tapB);
    b.addSource(this.#toB);
    a.addSource(this.#toA);
    this.#log('BRIDGE_CREATED', 'calls bridged', {});
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The call on the other side of `s`. */
  peerOf(s: CallSession): CallSession {
    return s === this.a ? this.b : this.a;
  }

  /** Per direction: a to b, b to a. */
  get stats(): { aToB: FeedStats; bToA: FeedStats } {
    return { aToB: this.#toB.stats, bToA: this.#toA.stats };
  }

  close(reason: BridgeCloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.a.removeTap(this.#tapA);
    this.b.removeTap(this.#tapB);
    this.b.removeSource(this.#toB);
    this.a.removeSource(this.#toA);
    const s = (f: FeedStats): string => `${f.frames}/${f.dropped}/${f.trimmed}/${f.underruns}`;
    this.#log('BRIDGE_CLOSED', `bridge closed (${reason})`, {
      reason,
      'bridge.duration_ms': Math.round(performance.now() - this.createdAtMs),
      // frames / dropped (queue full) / trimmed (delay) / underruns, per direction
      'bridge.a_to_b': s(this.#toB.stats),
      'bridge.b_to_a': s(this.#toA.stats),
    });
    this.safeEmit('close', reason);
    this.removeAllListeners();
  }

  /** One line in each call's log, so either call's history shows the bridge. */
  #log(event: string, message: string, extra: Record<string, unknown>): void {
    for (const [self, peer] of [
      [this.a, this.b],
      [this.b, this.a],
    ] as const) {
      self.log.info(
        {
          event,
          attributes: {
            'rtp.port': self.port,
            'rtp.codec': self.wireCodec,
            'bridge.peer_port': peer.port,
            'bridge.peer_call_id': peer.callId,
            'bridge.peer_codec': peer.wireCodec,
            ...extra,
          },
        },
        message,
      );
    }
  }
}
