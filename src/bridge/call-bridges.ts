import { Gauge } from 'prom-client';
import { MediaError } from '../errors/media-error.ts';
import { METRIC_PREFIX, scrapedCounter, type Metrics } from '../metrics/metrics.ts';
import type { CallSession } from '../sessions/call-session.ts';
import type { MediaClock } from '../media-path/clock.ts';
import { CallBridge } from './call-bridge.ts';
import type { FeedStats } from './bridge-feed.ts';
import type { RemoteBridgeEnd } from './remote-bridge-end.ts';

type Totals = Pick<FeedStats, 'dropped' | 'trimmed' | 'underruns'>;
/** A bridge within this shard, or this shard's half of one whose other call another shard carries. */
type Link = CallBridge | RemoteBridgeEnd;

/**
 * Every bridge, by call: a call is in at most one. The one place bridges are made and
 * forgotten; a bridge that closes (unbridged, or one of its calls ended) leaves the map.
 */
export class CallBridges {
  readonly #byCall = new Map<CallSession, Link>();
  readonly #live = new Set<Link>();
  readonly #closedTotals: Totals = { dropped: 0, trimmed: 0, underruns: 0 };

  readonly #clock: MediaClock;

  constructor(opts: { metrics: Metrics; clock: MediaClock }) {
    this.#clock = opts.clock;
    const registers = [opts.metrics.registry];
    const self = this;
    new Gauge({
      name: `${METRIC_PREFIX}bridges_active`,
      help: 'Pairs of calls bridged to each other',
      registers,
      collect() {
        // A bridge across shards has a half on each: each half counts as half a pair.
        let pairs = 0;
        for (const b of self.#live) pairs += b instanceof CallBridge ? 1 : 0.5;
        this.set(pairs);
      },
    });
    // Per-frame numbers stay plain fields on each bridge; they are summed when scraped.
    const total = (name: string, help: string, key: keyof Totals): void => {
      scrapedCounter(opts.metrics.registry, name, help, () => {
        let v = self.#closedTotals[key];
        for (const b of self.#live) v += b.stats.aToB[key] + b.stats.bToA[key];
        return v;
      });
    };
    total('bridge_frames_dropped_total', 'Bridged 20 ms frames dropped because the receiving call fell behind', 'dropped');
    total('bridge_frames_trimmed_total', 'Bridged 20 ms frames dropped to bring jitter delay back down', 'trimmed');
    total('bridge_underruns_total', 'Ticks a bridged call had nothing to play in the middle of speech', 'underruns');
  }

  get size(): number {
    return this.#live.size;
  }

  of(s: CallSession): Link | undefined {
    return this.#byCall.get(s);
  }

  /** The other half of a bridge across shards: the call must be free, like any bridged call. */
  attachRemote(end: RemoteBridgeEnd): void {
    const s = end.session;
    if (s.closed) throw new MediaError('not_found', `no call session on port ${s.port}`);
    const existing = this.#byCall.get(s);
    if (existing) throw new MediaError('failed_precondition', `the call on port ${s.port} is already bridged; unbridge it first`);
    this.#byCall.set(s, end);
    this.#live.add(end);
    end.on('close', () => this.#forget(end));
  }

  /** Connects two open calls; each must be free. */
  bridge(a: CallSession, b: CallSession): CallBridge {
    if (a === b) throw new MediaError('invalid_argument', `a call cannot be bridged with itself (port ${a.port})`);
    for (const s of [a, b]) if (s.closed) throw new MediaError('not_found', `no call session on port ${s.port}`);
    for (const s of [a, b]) if (s.conferenceId !== null) throw new MediaError('failed_precondition', `the call on port ${s.port} is in conference ${s.conferenceId}; remove it there before bridging it`);
    const existing = this.#byCall.get(a) ?? this.#byCall.get(b);
    if (existing && !(existing instanceof CallBridge)) {
      const busy = this.#byCall.has(a) ? a : b;
      throw new MediaError('failed_precondition', `the call on port ${busy.port} is already bridged across shards; unbridge it first`);
    }
    if (existing) {
      if (existing.peerOf(a) === b && existing.peerOf(b) === a) {
        throw new MediaError('already_exists', `the calls on ports ${a.port} and ${b.port} are already bridged`);
      }
      const busy = this.#byCall.has(a) ? a : b;
      throw new MediaError('failed_precondition', `the call on port ${busy.port} is already bridged with the call on port ${existing.peerOf(busy).port}; unbridge it first`);
    }
    const bridge = new CallBridge(a, b, this.#clock);
    this.#byCall.set(a, bridge);
    this.#byCall.set(b, bridge);
    this.#live.add(bridge);
    bridge.on('close', () => this.#forget(bridge));
    return bridge;
  }

  /** Dissolves the bridge a call is in; false when it is in none. */
  unbridge(s: CallSession): boolean {
    const bridge = this.#byCall.get(s);
    if (!bridge) return false;
    bridge.close('unbridged');
    return true;
  }

  #forget(bridge: Link): void {
    for (const s of bridge instanceof CallBridge ? [bridge.a, bridge.b] : [bridge.session]) if (this.#byCall.get(s) === bridge) this.#byCall.delete(s);
    this.#live.delete(bridge);
    for (const d of [bridge.stats.aToB, bridge.stats.bToA]) {
      this.#closedTotals.dropped += d.dropped;
      this.#closedTotals.trimmed += d.trimmed;
      this.#closedTotals.underruns += d.underruns;
    }
  }
}
