import { Resampler } from '../codecs/resampler.ts';
import type { TimelineFrame } from '../media-path/inbound-timeline.ts';
import type { CallTap, CloseReason } from '../sessions/call-session.ts';
import type { ChannelLayout } from './target.ts';
import type { WavSpool } from './wav-spool.ts';
import { FramePairer, type FramePair, type PairerStats } from '../media-path/frame-pairer.ts';

/**
 * Caller frames waiting for the service clock. A backlog comes from a stalled event loop or a
 * burst of late packets and is worked off by the clock's catch-up ticks, so it must not drop
 * audio; only clock drift between the phone and us (tens of ppm: a frame every few minutes)
 * ever fills a second's worth, and then the oldest frame goes.
 */
const MAX_INBOUND_QUEUE = 50;
/**
 * How late (in 20 ms frames) a caller frame may come and still sit beside what the service
 * sent at the time: the timeline's reorder window (40 ms), a tick, and jitter.
 */
const PAIRING_DELAY_FRAMES = 4;
const FLUSH_EVERY_TICKS = 50;
const MAX_BACKLOG_BYTES = 16 * 1024 * 1024;

/**
 * Records a call on the service clock: every 20 ms it writes one frame of the caller (left)
 * and one of what the service sent (right), silence where either had none, so the file's
 * length is the call's wall time. The two sides are paired by when they were heard, 80 ms
 * behind the clock (see FramePairer). Mono mixes both.
 */
export class CallRecorder implements CallTap {
  readonly #spool: WavSpool;
  readonly #layout: ChannelLayout;
  readonly #pairer = new FramePairer({ delayFrames: PAIRING_DELAY_FRAMES, maxQueue: MAX_INBOUND_QUEUE });
  #left: Resampler | null;
  readonly #right: Resampler | null;
  readonly #silence: Int16Array;
  /** Reused per frame: the mono mix and the resamplers' output. */
  readonly #mix: Int16Array;
  readonly #outLeft: Int16Array;
  readonly #outRight: Int16Array;
  readonly #onClosed: (reason: CloseReason) => void;
  #ticks = 0;
  #stopped = false;

  constructor(opts: { spool: WavSpool; layout: ChannelLayout; callRate: number; frameSamples: number; onCallClosed: (reason: CloseReason) => void }) {
    this.#spool = opts.spool;
    this.#layout = opts.layout;
    this.#silence = new Int16Array(opts.frameSamples);
    const resample = opts.spool.sampleRate !== opts.callRate;
    this.#left = resample ? new Resampler(opts.callRate, opts.spool.sampleRate) : null;
    this.#right = resample && opts.layout === 'stereo' ? new Resampler(opts.callRate, opts.spool.sampleRate) : null;
    this.#mix = new Int16Array(opts.frameSamples);
    const outSamples = this.#left ? this.#left.maxOutputLength(opts.frameSamples) : 0;
    this.#outLeft = new Int16Array(outSamples);
    this.#outRight = new Int16Array(this.#right ? outSamples : 0);
    this.#onClosed = opts.onCallClosed;
  }

  get spool(): WavSpool {
    return this.#spool;
  }

  get pairing(): PairerStats {
    return this.#pairer.stats;
  }

  inbound(frame: TimelineFrame): void {
    if (!this.#stopped) this.#pairer.caller(frame.samples);
  }

  outbound(frame: Int16Array | null): void {
    if (this.#stopped) return;
    const pair = this.#pairer.tick(frame);
    if (pair) this.#write(pair);
  }

  #write(pair: FramePair): void {
    const left = pair.caller?.samples ?? this.#silence;
    const right = pair.service ?? this.#silence;
    if (this.#layout === 'mono') {
      const mixed = left.length === this.#mix.length ? this.#mix : new Int16Array(left.length);
      for (let i = 0; i < mixed.length; i++) {
        const v = left[i]! + right[i]!;
        mixed[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
      }
      this.#spool.append(this.#left ? this.#left.process(mixed, this.#fit(this.#outLeft, mixed.length)) : mixed, MAX_BACKLOG_BYTES);
    } else {
      const l = this.#left ? this.#left.process(left, this.#fit(this.#outLeft, left.length)) : left;
      const r = this.#right ? this.#right.process(right, this.#fit(this.#outRight, right.length)) : right;
      this.#spool.appendStereo(l, r, MAX_BACKLOG_BYTES);
    }
    if (++this.#ticks % FLUSH_EVERY_TICKS === 0) void this.#spool.flush();
  }

  /** No more audio is taken; what the pairing and the resamplers still hold is written. The owner finishes the spool. */
  stop(): void {
    if (!this.#stopped) for (const pair of this.#pairer.drain()) this.#write(pair);
    if (this.#stopped && !this.#left) return;
    this.#stopped = true;
    if (!this.#left) return;
    const l = this.#left.flush();
    if (this.#layout === 'mono') this.#spool.append(l, MAX_BACKLOG_BYTES);
    else this.#spool.appendStereo(l, this.#right!.flush(), MAX_BACKLOG_BYTES);
    this.#left = null;
  }

  callClosed(reason: CloseReason): void {
    this.#onClosed(reason);
  }

  /** The reused output array, or a fresh one for a frame longer than the call's frames. */
  #fit(out: Int16Array, inputLength: number): Int16Array {
    const need = this.#left!.maxOutputLength(inputLength);
    return need <= out.length ? out : new Int16Array(need);
  }
}
