import { MediaError } from '../errors/media-error.ts';
import { SimdKernel } from './resampler-simd.ts';

/**
 * Streaming sample-rate conversion of 16-bit mono PCM by band-limited interpolation: every
 * output sample n is the input evaluated at time n * inRate / outRate through a Kaiser
 * windowed sinc. Output times are tracked as an exact fraction, so a stream never drifts.
 *
 * The kernel is centred on the output time (zero phase), so the output is time-aligned with
 * the input; the price is that an output sample can only be produced once `delay` input
 * samples past its time have arrived. flush() feeds silence to release those last samples.
 *
 * A live stream cut in 20 ms packets would pay a whole packet for those few samples (a frame
 * completes only with the next packet), so `delayed` moves the output `delay` input samples
 * later instead: every input sample releases its outputs at once, and the audio is 2.25 ms
 * late rather than 20 ms.
 */

/**
 * Zero crossings of the kernel on each side, counted at the lower of the two rates. 18 is
 * the fewest that holds the stopband and passband below (16 left 4.3 kHz at 58 dB and
 * 3.5 kHz at -0.58 dB); every AI call resamples twice (the 16 kHz fork, the 16 kHz TTS),
 * and this loop was most of what such a call cost with 32.
 */
const HALF_TAPS = 18;
/**
 * Cutoff (centre of the transition band) as a fraction of the lower Nyquist frequency: flat
 * within 0.1 dB to 0.85 of it (3.4 kHz at 8 kHz), over 60 dB down from 1.075 of it.
 */
const ROLLOFF = 0.95;
/** Kaiser shape: about 65 dB of stopband over the transition the taps allow. */
const KAISER_BETA = 6.5;
/** Largest exact polyphase table, in coefficients; beyond it phases are interpolated. */
const MAX_EXACT_TABLE = 1 << 18;
/** Interpolated tables keep about this many phases per kernel zero crossing. */
const INTERPOLATED_PHASES = 1024;
/** Input is taken in blocks of this many samples. */
const BLOCK = 4096;

export const MIN_SAMPLE_RATE = 1000;
export const MAX_SAMPLE_RATE = 768000;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Modified Bessel function of the first kind, order 0 (power series; converges fast here). */
function besselI0(x: number): number {
  const q = (x * x) / 4;
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 64 && term > sum * 1e-17; k++) {
    term *= q / (k * k);
    sum += term;
  }
  return sum;
}

/**
 * One row per phase: row p holds the 2*half taps applied to input samples
 * i-half+1 .. i+half for an output at time i + p/phases. Each row is scaled to unit sum
 * so that DC passes unchanged whatever the phase.
 */
function buildTable(rows: number, phases: number, half: number, cutoff: number): Float64Array {
  const taps = 2 * half;
  const table = new Float64Array(rows * taps);
  const norm = besselI0(KAISER_BETA);
  for (let p = 0; p < rows; p++) {
    const phase = p / phases;
    let sum = 0;
    for (let j = 0; j < taps; j++) {
      const u = phase + half - 1 - j;
      const r = u / half;
      if (r <= -1 || r >= 1) continue;
      const x = Math.PI * cutoff * u;
      const sinc = x === 0 ? 1 : Math.sin(x) / x;
      const c = cutoff * sinc * (besselI0(KAISER_BETA * Math.sqrt(1 - r * r)) / norm);
      table[p * taps + j] = c;
      sum += c;
    }
    for (let j = 0; j < taps; j++) table[p * taps + j]! /= sum;
  }
  return table;
}

function checkRate(name: string, rate: number): void {
  if (!Number.isInteger(rate) || rate < MIN_SAMPLE_RATE || rate > MAX_SAMPLE_RATE) {
    throw new MediaError(
      'invalid_argument',
      `${name} must be an integer sample rate from ${MIN_SAMPLE_RATE} to ${MAX_SAMPLE_RATE} Hz, got ${rate}`,
    );
  }
}

export class Resampler {
  readonly inRate: number;
  readonly outRate: number;
  /**
   * Input samples held back before the output sample at their time can be produced
   * (emission latency; the output signal itself is not delayed). 0 when the rates are equal.
   */
  readonly delay: number;
  /** Input samples the output lags the input: `delay` for a delayed resampler, else 0. */
  readonly lag: number;

  // output n sits at input time n * step / up, kept as integer position + fraction / up
  readonly #up: number;
  readonly #stepInt: number;
  readonly #stepFrac: number;
  readonly #half: number;
  readonly #taps: number;
  readonly #table: Float64Array;
  /** 0 for an exact table (row = fraction); otherwise phases per unit of input time. */
  readonly #phases: number;

  /** Exact tables: the same loop in WebAssembly SIMD, which then owns the input buffer. */
  readonly #simd: SimdKernel | null;
  #buf: Float64Array | Float32Array;
  #scratch = new Int16Array(0);
  #len = 0;
  #pos = 0;
  #frac = 0;
  #inputCount = 0;
  #outputCount = 0;

  /**
   * `delayed`: outputs as soon as their input arrived, `lag` input samples late (live streams).
   * `simd: false` keeps the JavaScript loop (to compare the two).
   */
  constructor(inRate: number, outRate: number, opts: { delayed?: boolean; simd?: boolean } = {}) {
    checkRate('inRate', inRate);
    checkRate('outRate', outRate);
    this.inRate = inRate;
    this.outRate = outRate;
    const g = gcd(inRate, outRate);
    const up = outRate / g;
    const down = inRate / g;
    this.#up = up;
    this.#stepInt = Math.floor(down / up);
    this.#stepFrac = down % up;
    if (up === down) {
      this.#half = 0;
      this.#taps = 0;
      this.#table = new Float64Array(0);
      this.#phases = 0;
      this.delay = 0;
    } else {
      const stretch = Math.max(1, down / up);
      const half = Math.ceil(HALF_TAPS * stretch);
      this.#half = half;
      this.#taps = 2 * half;
      const cutoff = ROLLOFF / stretch;
      if (up * this.#taps <= MAX_EXACT_TABLE) {
        this.#phases = 0;
        this.#table = buildTable(up, up, half, cutoff);
      } else {
        // the kernel is stretched by the downsampling ratio, so it needs fewer phases per input sample
        const phases = Math.max(2, Math.ceil(INTERPOLATED_PHASES / stretch));
        this.#phases = phases;
        this.#table = buildTable(phases + 1, phases, half, cutoff);
      }
      this.delay = half;
    }
    this.lag = opts.delayed ? this.delay : 0;
    const bufSamples = BLOCK + 2 * this.#taps + this.#stepInt + 1;
    this.#simd = this.#taps > 0 && this.#phases === 0 && opts.simd !== false ? SimdKernel.create(this.#table, up, this.#taps, bufSamples, this.maxOutputLength(BLOCK)) : null;
    this.#buf = this.#simd ? this.#simd.buf : new Float64Array(bufSamples);
    this.reset();
  }

  /** Which inner loop runs: WebAssembly SIMD for exact tables where the engine has it. */
  get kernel(): 'simd' | 'js' | 'copy' {
    return this.#taps === 0 ? 'copy' : this.#simd ? 'simd' : 'js';
  }

  /** Forgets the stream: the next process() starts a new one at time zero. */
  reset(): void {
    // half-1 samples of silence before the stream, so the first output's taps are in the buffer
    // (a delayed stream: `lag` more, and the first output sits that far before the input)
    const lead = Math.max(0, this.#half - 1);
    this.#buf.fill(0, 0, lead + this.lag);
    this.#len = lead + this.lag;
    this.#pos = lead;
    this.#frac = 0;
    this.#inputCount = 0;
    this.#outputCount = 0;
  }

  /** Upper bound on the samples one process() call with `inputLength` samples (or flush(), with 0) returns. */
  maxOutputLength(inputLength: number): number {
    if (this.#taps === 0) return inputLength;
    return Math.ceil(((inputLength + this.#half + 1) * this.outRate) / this.inRate) + 1;
  }

  /**
   * Feeds the next input chunk; returns the output samples that became complete.
   * With `out` (at least maxOutputLength(input.length) long) no memory is allocated.
   */
  process(input: Int16Array, out?: Int16Array): Int16Array {
    if (this.#taps === 0) {
      this.#inputCount += input.length;
      this.#outputCount += input.length;
      if (!out) return input.slice();
      requireCapacity(out, input.length);
      out.set(input);
      return out.subarray(0, input.length);
    }
    const bound = this.maxOutputLength(input.length);
    if (out) requireCapacity(out, bound);
    else if (this.#scratch.length < bound) this.#scratch = new Int16Array(bound);
    const dst = out ?? this.#scratch;
    let n = 0;
    // block by block, so the buffer stays a kernel plus a block long whatever the chunk size
    for (let i = 0; i < input.length; i += BLOCK) {
      this.#append(input.subarray(i, Math.min(i + BLOCK, input.length)));
      n = this.#run(dst, n, Number.POSITIVE_INFINITY);
      this.#discardConsumed();
    }
    this.#inputCount += input.length;
    // a fresh exact-length array when the caller gave none, so its .buffer holds only samples
    return out ? dst.subarray(0, n) : dst.slice(0, n);
  }

  /**
   * Ends the stream: releases the held-back samples so the whole stream has
   * round((inputs + lag) * outRate / inRate) outputs, then resets for a new stream.
   */
  flush(out?: Int16Array): Int16Array {
    if (this.#taps === 0) {
      this.reset();
      return (out ?? new Int16Array(0)).subarray(0, 0);
    }
    const total = Math.round(((this.#inputCount + this.lag) * this.outRate) / this.inRate);
    const remaining = Math.max(0, total - this.#outputCount);
    const dst = out ?? new Int16Array(remaining);
    requireCapacity(dst, remaining);
    if (remaining > 0) {
      const lastPos = this.#pos + Math.floor((this.#frac + (remaining - 1) * (this.#stepInt * this.#up + this.#stepFrac)) / this.#up);
      const zeros = lastPos + this.#half + 1 - this.#len;
      if (zeros > 0) this.#appendSilence(zeros);
    }
    const n = this.#run(dst, 0, remaining);
    this.reset();
    return dst.subarray(0, n);
  }

  /** Writes outputs from dst[n] on while their taps are all buffered, until dst[limit]; returns the new n. */
  #run(dst: Int16Array, n: number, limit: number): number {
    if (this.#simd) {
      const first = n;
      const k = this.#simd;
      n = k.run(this.#half, this.#up, this.#stepInt, this.#stepFrac, this.#len, this.#pos, this.#frac, dst, n, limit);
      this.#pos = k.pos;
      this.#frac = k.frac;
      this.#outputCount += n - first;
      return n;
    }
    const buf = this.#buf;
    const table = this.#table;
    const taps = this.#taps;
    const half = this.#half;
    const up = this.#up;
    const phases = this.#phases;
    const stepInt = this.#stepInt;
    const stepFrac = this.#stepFrac;
    let pos = this.#pos;
    let frac = this.#frac;
    const first = n;
    while (n < limit && pos + half < this.#len) {
      const start = pos - half + 1;
      let acc: number;
      if (phases === 0) {
        const row = frac * taps - start;
        // two accumulators (taps is even) let the multiplies overlap
        let a0 = 0;
        let a1 = 0;
        for (let k = start, end = start + taps; k < end; k += 2) {
          a0 += buf[k]! * table[row + k]!;
          a1 += buf[k + 1]! * table[row + k + 1]!;
        }
        acc = a0 + a1;
      } else {
        const where = (frac * phases) / up;
        const p = Math.floor(where);
        const a = where - p;
        const row0 = p * taps;
        const row1 = row0 + taps;
        let acc0 = 0;
        let acc1 = 0;
        for (let j = 0; j < taps; j++) {
          const x = buf[start + j]!;
          acc0 += x * table[row0 + j]!;
          acc1 += x * table[row1 + j]!;
        }
        acc = acc0 + a * (acc1 - acc0);
      }
      // round half away from zero, saturating: full-scale input overshoots through Gibbs ringing
      const v = acc < 0 ? acc - 0.5 : acc + 0.5;
      dst[n++] = v >= 32767 ? 32767 : v <= -32768 ? -32768 : v | 0;
      pos += stepInt;
      frac += stepFrac;
      if (frac >= up) {
        frac -= up;
        pos++;
      }
    }
    this.#pos = pos;
    this.#frac = frac;
    this.#outputCount += n - first;
    return n;
  }

  #ensureRoom(extra: number): void {
    const need = this.#len + extra;
    if (need <= this.#buf.length) return;
    if (this.#simd) {
      this.#simd.ensure(need);
      this.#buf = this.#simd.buf;
      return;
    }
    const grown = new Float64Array(Math.max(need, 2 * this.#buf.length));
    grown.set(this.#buf.subarray(0, this.#len));
    this.#buf = grown;
  }

  #append(input: Int16Array): void {
    this.#ensureRoom(input.length);
    this.#buf.set(input, this.#len);
    this.#len += input.length;
  }

  #appendSilence(count: number): void {
    this.#ensureRoom(count);
    this.#buf.fill(0, this.#len, this.#len + count);
    this.#len += count;
  }

  /** Drops input that no future output reaches, keeping the buffer as short as the kernel. */
  #discardConsumed(): void {
    const shift = this.#pos - this.#half + 1;
    if (shift <= 0) return;
    this.#buf.copyWithin(0, shift, this.#len);
    this.#len -= shift;
    this.#pos -= shift;
  }
}

function requireCapacity(out: Int16Array, needed: number): void {
  if (out.length < needed) {
    throw new MediaError('invalid_argument', `resampler output buffer holds ${out.length} samples, ${needed} may be needed`);
  }
}

/** Converts a whole signal; the result has round(pcm.length * outRate / inRate) samples, time-aligned. */
export function resample(pcm: Int16Array, inRate: number, outRate: number): Int16Array {
  const r = new Resampler(inRate, outRate);
  if (r.delay === 0) return pcm.slice();
  const total = Math.round((pcm.length * outRate) / inRate);
  const out = new Int16Array(Math.max(total, r.maxOutputLength(pcm.length)));
  const head = r.process(pcm, out).length;
  const tail = r.flush(out.subarray(head)).length;
  return out.slice(0, head + tail);
}
