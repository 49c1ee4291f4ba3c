import { performance } from 'node:perf_hooks';
import type { TimelineFrame } from '../media-path/inbound-timeline.ts';
import type { AudioSource } from '../media-path/mixer.ts';

/** Frames held for the other call: 60 ms absorbs a burst after the event loop stalled. */
export const FEED_MAX_FRAMES = 3;
/** A frame taken sooner than this after it arrived leaves no room for jitter: wait a frame instead. */
export const JITTER_MARGIN_MS = 8;
const FRAME_MS = 20;
/**
 * Ticks (3 s) over which every frame must have waited a whole frame more than the margin
 * before one frame is trimmed: a cushion that jitter built is kept while jitter lasts (every
 * underrun is a gap), and given back a few calm seconds after.
 */
const TRIM_WINDOW_TICKS = 150;
/** After this many ticks (2 s) waiting for a quiet frame to trim, a loud one goes. */
const TRIM_PATIENCE_TICKS = 100;
/** Mean square below which a frame counts as quiet (about -40 dBFS). */
const QUIET_ENERGY = (32768 * 0.01) ** 2;

export interface FeedStats {
  /** Frames handed in (caller audio and concealment). */
  frames: number;
  /** Audio frames dropped because the queue was full (the other call fell behind). */
  dropped: number;
  /** Audio frames dropped to bring a delay built up by jitter back down. */
  trimmed: number;
  /** Ticks with nothing to play in the middle of speech (a late packet). */
  underruns: number;
}

/**
 * One direction of a bridge: one call's caller audio (20 ms frames from its inbound
 * timeline, arriving with its packets) waiting to be mixed into what the other call hears
 * (taken on the service clock, at a phase of its own).
 *
 * The delay is the time from a frame's arrival to the tick that takes it: as short as the
 * phase allows, unless that leaves less than JITTER_MARGIN_MS for the next packet to be late,
 * in which case playout starts a frame later (decided when audio starts, so speech is not
 * shifted). An underrun (a packet later than the margin) adds a frame of cushion; the
 * cushion is trimmed, on a quiet frame, once the delay has stayed a whole frame above the
 * margin for TRIM_WINDOW_TICKS (3 s). Beyond FEED_MAX_FRAMES the oldest frame goes. Concealed
 * frames (loss, silence suppression) keep their place in time but play as nothing.
 */
export class BridgeFeed implements AudioSource {
  readonly stats: FeedStats = { frames: 0, dropped: 0, trimmed: 0, underruns: 0 };
  /** Null: a concealed frame. */
  readonly #queue: (Int16Array | null)[] = [];
  readonly #arrived: number[] = [];
  readonly #now: () => number;
  #playing = false;
  #talking = false;
  #minWait = Infinity;
  #windowTicks = 0;
  #trimWait = -1;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? (() => performance.now());
  }

  get depth(): number {
    return this.#queue.length;
  }

  push(frame: TimelineFrame): void {
    this.stats.frames++;
    if (this.#queue.length >= FEED_MAX_FRAMES) {
      if (this.#queue.shift()) this.stats.dropped++;
      this.#arrived.shift();
    }
    this.#queue.push(frame.concealed ? null : frame.samples);
    this.#arrived.push(this.#now());
  }

  mixInto(acc: Int32Array): boolean {
    const f = this.take();
    if (!f) return false;
    for (let i = 0; i < acc.length; i++) acc[i]! += f[i] ?? 0;
    return true;
  }

  /**
   * The frame to play on this tick, by the policy above, or null (nothing to play: an
   * underrun, a concealed frame, or playout waiting for its margin). The frame is the one
   * handed in; the caller only reads it.
   */
  take(): Int16Array | null {
    if (this.#queue.length === 0) {
      if (this.#talking) this.stats.underruns++;
      this.#talking = false;
      this.#playing = false;
      this.#trimWait = -1;
      this.#resetWindow();
      return null;
    }
    const wait = this.#now() - this.#arrived[0]!;
    if (!this.#playing) {
      this.#playing = true;
      // Starting: a frame that just arrived would leave the next one no room to be late.
      if (wait < JITTER_MARGIN_MS && this.#queue.length === 1) return null;
    }
    let f = this.#queue.shift()!;
    this.#arrived.shift();
    if (wait < this.#minWait) this.#minWait = wait;
    if (++this.#windowTicks >= TRIM_WINDOW_TICKS) {
      if (this.#minWait >= FRAME_MS + JITTER_MARGIN_MS && this.#trimWait < 0) this.#trimWait = 0;
      this.#resetWindow();
    }
    if (this.#trimWait >= 0 && this.#queue.length > 0 && (isQuiet(f) || ++this.#trimWait > TRIM_PATIENCE_TICKS)) {
      // Play the next frame in this one's place: the delay is one frame (20 ms) shorter.
      if (f) this.stats.trimmed++;
      f = this.#queue.shift()!;
      this.#arrived.shift();
      this.#trimWait = -1;
    }
    this.#talking = f !== null;
    return f;
  }

  #resetWindow(): void {
    this.#windowTicks = 0;
    this.#minWait = Infinity;
  }
}

function isQuiet(f: Int16Array | null): boolean {
  if (!f) return true;
  let e = 0;
  for (let i = 0; i < f.length; i++) e += f[i]! * f[i]!;
  return e / f.length < QUIET_ENERGY;
}
