import { performance } from 'node:perf_hooks';
import { Conference } from '../conference/conference.ts';
import { PhoneMember } from '../conference/phone-member.ts';
import type { MediaClock } from '../media-path/clock.ts';
import type { CallSession, CloseReason } from '../sessions/call-session.ts';
import { TypedEmitter } from '../util/typed-emitter.ts';
import type { FeedStats } from './bridge-feed.ts';

export type BridgeCloseReason = 'unbridged' | 'call_closed' | 'shutdown';

/**
 * Two calls that hear each other: a conference of two that mixes everything it hears (no
 * talk gate), so each call hears the other beside whatever else plays to it (prompts,
 * injected speech), each encoded in its own codec: a G.711 leg bridged to an Opus leg is
 * transcoded both ways with no step of its own. Either call ending closes the bridge; the
 * other call carries on, back on the clock.
 */
export class CallBridge extends TypedEmitter<{ close: [BridgeCloseReason] }> {
  readonly a: CallSession;
  readonly b: CallSession;
  readonly createdAtMs = performance.now();
  readonly #mix: Conference;
  readonly #members: PhoneMember[] = [];
  #closed = false;

  constructor(a: CallSession, b: CallSession, clock: MediaClock) {
    super(a.log);
    this.a = a;
    this.b = b;
    this.#mix = new Conference({
      id: `bridge-${a.port}-${b.port}`,
      traceId: a.traceId,
      tenantId: a.tenantId,
      maxParticipants: 2,
      gateOnTalking: false,
      talk: { thresholdDbfs: -45, holdMs: 500 },
      endWhenEmpty: false,
      clock,
      log: a.log,
    });
    const ended = (reason: CloseReason): void => this.close(reason === 'shutdown' ? 'shutdown' : 'call_closed');
    for (const [id, s] of [
      ['a', a],
      ['b', b],
    ] as const) {
      this.#mix.join(id, (encodedShared) => {
        const m = new PhoneMember(s, { conferenceId: null, encodedShared, callEnded: ended });
        this.#members.push(m);
        return m;
      });
    }
    this.#log('BRIDGE_CREATED', 'calls bridged', {});
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The call on the other side of `s`. */
  peerOf(s: CallSession): CallSession {
    return s === this.a ? this.b : this.a;
  }

  /** Per direction: what a said on its way to b, and the other way. */
  get stats(): { aToB: FeedStats; bToA: FeedStats } {
    return { aToB: this.#members[0]!.stats, bToA: this.#members[1]!.stats };
  }

  close(reason: BridgeCloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    const stats = this.stats;
    this.#mix.close(reason === 'shutdown' ? 'shutdown' : 'ended');
    const s = (f: FeedStats): string => `${f.frames}/${f.dropped}/${f.trimmed}/${f.underruns}`;
    this.#log('BRIDGE_CLOSED', `bridge closed (${reason})`, {
      reason,
      'bridge.duration_ms': Math.round(performance.now() - this.createdAtMs),
      // frames / dropped (queue full) / trimmed (delay) / underruns, per direction
      'bridge.a_to_b': s(stats.aToB),
      'bridge.b_to_a': s(stats.bToA),
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
