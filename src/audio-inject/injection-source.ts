import { Resampler } from '../codecs/resampler.ts';
import type { AudioSource } from '../media-path/mixer.ts';

/** Converted samples kept for reuse at most (one second at 8 kHz). */
const MAX_SCRATCH = 8000;
/**
 * The ring starts this long (at the call's rate) and doubles as a client queues further
 * ahead, up to its capacity: most clients keep a few hundred ms ahead, and a ring of the
 * whole allowance (30 s by default) would hold half a megabyte per call from the start.
 */
const INITIAL_RING_MS = 1000;

export interface MarkReached {
  name: string;
  /** True when `clear` dropped the audio before it instead of playing it. */
  cleared: boolean;
}

export interface InjectionEvents {
  /** The audio queued before this mark has been handed to the socket (or was cleared). */
  mark(m: MarkReached): void;
  /** The queue ran dry while audio was expected (the client is slower than real time). */
  underrun(): void;
  /** Queued audio fell to or below the low-water mark after being above the high-water mark. */
  drained(): void;
}

/**
 * Audio pushed by a client (text-to-speech), played into the call on the service's clock:
 * re-framed to 20 ms, resampled to the call's rate, mixed with whatever else plays.
 * The client may send faster than real time; the queue is bounded and says when to pause,
 * and a message larger than the room left is kept whole while the stream waits: audio is
 * never cut to fit.
 */
export class InjectionSource implements AudioSource {
  readonly #resampler: Resampler | null;
  readonly #events: InjectionEvents;
  readonly #capacity: number;
  readonly #highWater: number;
  readonly #lowWater: number;
  #buf: Int16Array;
  #converted = new Int16Array(0);
  #head = 0;
  #len = 0;
  /** Samples ever queued / ever played: marks are positions on this count. */
  #queuedTotal = 0;
  #playedTotal = 0;
  #marks: { name: string; at: number }[] = [];
  /** Audio of the last message that did not fit in the ring yet, oldest first. */
  #overflow: Int16Array[] = [];
  #overflowLen = 0;
  #started = false;
  #dry = false;
  #inputEnded = false;
  #aboveHigh = false;
  underruns = 0;

  constructor(opts: { inputRate: number; callRate: number; maxBufferMs: number; events: InjectionEvents }) {
    this.#resampler = opts.inputRate === opts.callRate ? null : new Resampler(opts.inputRate, opts.callRate);
    this.#capacity = Math.ceil((opts.maxBufferMs * opts.callRate) / 1000);
    this.#highWater = Math.floor(this.#capacity * 0.75);
    this.#lowWater = Math.floor(this.#capacity * 0.25);
    this.#buf = new Int16Array(Math.min(this.#capacity, Math.ceil((INITIAL_RING_MS * opts.callRate) / 1000)));
    this.#events = opts.events;
  }

  /** Samples waiting to be played, at the call's rate. */
  bufferedSamples(): number {
    return this.#len + this.#overflowLen;
  }

  /** True when the caller should stop sending until `drained` (flow control). */
  get full(): boolean {
    return this.#len + this.#overflowLen >= this.#highWater;
  }

  /**
   * Queues PCM at the input rate, all of it: what does not fit in the ring waits beside it
   * (the stream is not read again until `drained`, so that is at most one message).
   */
  push(pcm: Int16Array): void {
    if (!this.#resampler) {
      this.#pushRaw(pcm);
    } else {
      // The converted samples are copied into the ring (or the overflow) at once: one scratch
      // serves every message of a usual size; a rare large one gets its own array.
      const need = this.#resampler.maxOutputLength(pcm.length);
      if (this.#converted.length < need && need <= MAX_SCRATCH) this.#converted = new Int16Array(need);
      this.#pushRaw(this.#resampler.process(pcm, need <= MAX_SCRATCH ? this.#converted : undefined));
    }
    if (this.#len + this.#overflowLen >= this.#highWater) this.#aboveHigh = true;
  }

  /** The end of the client's audio: whatever the resampler holds is queued too. */
  flushInput(): void {
    this.#inputEnded = true;
    if (this.#resampler) this.#pushRaw(this.#resampler.flush());
  }

  mark(name: string): void {
    if (this.bufferedSamples() === 0) {
      setImmediate(() => this.#events.mark({ name, cleared: false }));
      return;
    }
    this.#marks.push({ name, at: this.#queuedTotal });
  }

  /** Barge-in: everything queued is dropped at once; pending marks are answered as cleared. */
  clear(): number {
    const dropped = this.#len + this.#overflowLen;
    this.#head = 0;
    this.#len = 0;
    this.#overflow = [];
    this.#overflowLen = 0;
    this.#playedTotal = this.#queuedTotal;
    this.#resampler?.reset();
    this.#started = false;
    this.#dry = false;
    const marks = this.#marks.splice(0);
    for (const m of marks) setImmediate(() => this.#events.mark({ name: m.name, cleared: true }));
    this.#checkDrained();
    return dropped;
  }

  mixInto(acc: Int32Array): boolean {
    if (this.#len < acc.length && this.#started && !this.#inputEnded && !this.#dry) {
      // The client fell behind real time: the caller hears a gap. Reported once per gap.
      this.#dry = true;
      this.underruns++;
      this.#events.underrun();
    }
    if (this.#len === 0) return false;
    if (this.#len >= acc.length) this.#dry = false;
    this.#started = true;
    const n = Math.min(acc.length, this.#len);
    const size = this.#buf.length;
    for (let i = 0; i < n; i++) acc[i]! += this.#buf[(this.#head + i) % size]!;
    this.#head = (this.#head + n) % size;
    this.#len -= n;
    this.#playedTotal += n;
    if (this.#overflowLen > 0) this.#refill();
    // A partial last frame is padded with silence by the mixer's zeroed accumulator.
    while (this.#marks.length > 0 && this.#marks[0]!.at <= this.#playedTotal) {
      const m = this.#marks.shift()!;
      // Answered after this tick's packet is handed to the socket.
      setImmediate(() => this.#events.mark({ name: m.name, cleared: false }));
    }
    this.#checkDrained();
    return true;
  }

  #pushRaw(pcm: Int16Array): void {
    this.#queuedTotal += pcm.length;
    if (this.#overflowLen > 0) {
      this.#overflow.push(pcm.slice());
      this.#overflowLen += pcm.length;
      return;
    }
    const n = this.#intoRing(pcm);
    if (n < pcm.length) {
      this.#overflow.push(pcm.slice(n));
      this.#overflowLen += pcm.length - n;
    }
  }

  /** Copies what fits into the ring; returns how many samples it took. */
  #intoRing(pcm: Int16Array): number {
    const n = Math.min(this.#capacity - this.#len, pcm.length);
    if (this.#len + n > this.#buf.length) this.#grow(this.#len + n);
    const size = this.#buf.length;
    for (let i = 0; i < n; i++) this.#buf[(this.#head + this.#len + i) % size] = pcm[i]!;
    this.#len += n;
    return n;
  }

  /** A ring of at least `samples` (doubling, up to the capacity), the queue unwrapped to its start. */
  #grow(samples: number): void {
    const size = this.#buf.length;
    const next = new Int16Array(Math.min(this.#capacity, Math.max(samples, size * 2)));
    const tail = Math.min(this.#len, size - this.#head);
    next.set(this.#buf.subarray(this.#head, this.#head + tail));
    next.set(this.#buf.subarray(0, this.#len - tail), tail);
    this.#buf = next;
    this.#head = 0;
  }

  #refill(): void {
    while (this.#overflow.length > 0 && this.#len < this.#capacity) {
      const first = this.#overflow[0]!;
      const n = this.#intoRing(first);
      this.#overflowLen -= n;
      if (n === first.length) this.#overflow.shift();
      else this.#overflow[0] = first.subarray(n);
    }
  }

  #checkDrained(): void {
    if (this.#aboveHigh && this.#len + this.#overflowLen <= this.#lowWater) {
      this.#aboveHigh = false;
      this.#events.drained();
    }
  }
}
