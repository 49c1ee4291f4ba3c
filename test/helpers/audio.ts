import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Speech made on this machine with espeak-ng, converted by ffmpeg: nothing downloaded. */
const SENTENCE = 'Thank you for calling. Please say the name of the person you want to reach, then press the pound key.';

export interface SpeechFixtures {
  dir: string;
  /** 8 kHz mono 16-bit WAV. */
  wav8k: string;
  wav16k: string;
  mp38k: string;
  /** The 8 kHz samples, the reference for every comparison. */
  pcm8k: Int16Array;
  pcm16k: Int16Array;
}

let cached: SpeechFixtures | undefined;

function ffmpeg(args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function readWavPcm(path: string): Int16Array {
  const buf = readFileSync(path);
  // The fixtures are written by ffmpeg: find the data chunk rather than assume 44 bytes.
  let off = 12;
  while (off + 8 <= buf.length) {
    const id = buf.toString('latin1', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'data') return new Int16Array(buf.buffer.slice(buf.byteOffset + off + 8, buf.byteOffset + off + 8 + size));
    off += 8 + size + (size % 2);
  }
  throw new Error(`no data chunk in ${path}`);
}

export function speechFixtures(): SpeechFixtures {
  if (cached) return cached;
  const dir = join(tmpdir(), 'sentiric-media-fixtures-v1');
  mkdirSync(dir, { recursive: true });
  const raw = join(dir, 'speech-raw.wav');
  if (!existsSync(raw)) {
    const tmp = `${raw}.${process.pid}.wav`;
    execFileSync('espeak-ng', ['-v', 'en-us', '-s', '150', '-w', tmp, SENTENCE]);
    renameSync(tmp, raw);
  }
  const wav8k = join(dir, 'speech-8k.wav');
  const wav16k = join(dir, 'speech-16k.wav');
  const mp38k = join(dir, 'speech-8k.mp3');
  // A little gain and a fixed length keep every comparison on the same footing.
  if (!existsSync(wav8k)) ffmpeg(['-i', raw, '-af', 'volume=0.8', '-ar', '8000', '-ac', '1', '-c:a', 'pcm_s16le', wav8k]);
  if (!existsSync(wav16k)) ffmpeg(['-i', raw, '-af', 'volume=0.8', '-ar', '16000', '-ac', '1', '-c:a', 'pcm_s16le', wav16k]);
  if (!existsSync(mp38k)) ffmpeg(['-i', wav8k, '-c:a', 'libmp3lame', '-b:a', '32k', mp38k]);
  cached = { dir, wav8k, wav16k, mp38k, pcm8k: readWavPcm(wav8k), pcm16k: readWavPcm(wav16k) };
  return cached;
}

function energy(x: Int16Array | Float64Array, start: number, n: number): number {
  let e = 0;
  for (let i = start; i < start + n && i < x.length; i++) e += x[i]! * x[i]!;
  return e;
}

function ncc(a: ArrayLike<number>, b: ArrayLike<number>, lag: number, step = 1): number {
  // b is shifted: compares a[i] with b[i + lag].
  let ab = 0;
  let aa = 0;
  let bb = 0;
  const start = Math.max(0, -lag);
  const end = Math.min(a.length, b.length - lag);
  for (let i = start; i < end; i += step) {
    const x = a[i]!;
    const y = b[i + lag]!;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/** Coarse-search resolution: mean of every D samples (1 kHz at 8 kHz). */
const D = 8;
function decimate(x: Int16Array): Float64Array {
  const out = new Float64Array(Math.floor(x.length / D));
  for (let i = 0; i < out.length; i++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += x[i * D + j]!;
    out[i] = s / D;
  }
  return out;
}

/**
 * Normalised cross-correlation of `received` against `reference` at the best alignment
 * (received may start late by up to maxLagSamples). Coarse search on a decimated signal,
 * then a fine search around the best coarse lag.
 */
export function bestCorrelation(reference: Int16Array, received: Int16Array, maxLagSamples: number): { corr: number; lag: number } {
  const ra = decimate(reference);
  const rb = decimate(received);
  let best = { corr: -1, lag: 0 };
  for (let lag = -Math.floor(maxLagSamples / D); lag <= Math.floor(maxLagSamples / D); lag++) {
    const c = ncc(ra, rb, lag);
    if (c > best.corr) best = { corr: c, lag: lag * D };
  }
  let fine = { corr: -1, lag: best.lag };
  for (let lag = best.lag - 2 * D; lag <= best.lag + 2 * D; lag++) {
    const c = ncc(reference, received, lag);
    if (c > fine.corr) fine = { corr: c, lag };
  }
  return fine;
}

/** Length in samples from the first to the last 20 ms window with speech-level energy. */
export function activeSpan(x: Int16Array, window = 160, thresholdDb = -45): { start: number; end: number } {
  const limit = window * (32768 * 10 ** (thresholdDb / 20)) ** 2;
  let start = -1;
  let end = -1;
  for (let i = 0; i + window <= x.length; i += window) {
    if (energy(x, i, window) > limit) {
      if (start < 0) start = i;
      end = i + window;
    }
  }
  return { start: Math.max(0, start), end: Math.max(0, end) };
}

export function rmsDb(x: Int16Array): number {
  const e = energy(x, 0, x.length) / Math.max(1, x.length);
  return 10 * Math.log10(e / 32768 ** 2 + 1e-12);
}

export function concatPcm(parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Median over 1 s windows of `received` (those with speech energy) of each window's best
 * correlation with a stretch of `reference` that holds the whole window. Unlike one
 * correlation over the whole signal it is not lowered by a frame dropped or inserted for
 * clock drift, which shifts what follows. `looped`: the source repeats the reference (a
 * fake microphone playing a file), so a window may span the end and the start.
 */
export function medianWindowCorrelation(reference: Int16Array, received: Int16Array, opts: { windowSamples?: number; looped?: boolean } = {}): number {
  const scores = windowCorrelations(reference, received, opts);
  return scores.length ? [...scores].sort((a, b) => a - b)[Math.floor(scores.length / 2)]! : 0;
}

/** Each speech window's score of medianWindowCorrelation, in order. */
export function windowCorrelations(reference: Int16Array, received: Int16Array, opts: { windowSamples?: number; looped?: boolean } = {}): number[] {
  const n = opts.windowSamples ?? 8000;
  const ref = opts.looped ? concatPcm([reference, reference.subarray(0, n)]) : reference;
  const scores: number[] = [];
  for (let s = 0; s + n <= received.length; s += n) {
    const w = received.subarray(s, s + n);
    if (rmsDb(w) < -40) continue;
    scores.push(containedCorrelation(w, ref));
  }
  return scores;
}

/**
 * Best correlation of `window` with a stretch of `reference` that holds all of it: a lag
 * where only a sliver overlaps can match by chance, so those are not searched. Coarse
 * search on a decimated signal, then a fine search around the best few coarse lags (a
 * second of mostly high-frequency speech can peak at the wrong lag once decimated).
 */
function containedCorrelation(window: Int16Array, reference: Int16Array): number {
  const w = decimate(window);
  const r = decimate(reference);
  const coarse: { lag: number; c: number }[] = [];
  for (let lag = 0; lag + w.length <= r.length; lag++) coarse.push({ lag, c: ncc(w, r, lag) });
  coarse.sort((x, y) => y.c - x.c);
  const picked: number[] = [];
  for (const { lag } of coarse) {
    if (picked.length === 5) break;
    if (picked.every((p) => Math.abs(p - lag) > 2)) picked.push(lag);
  }
  let fine = -1;
  for (const p of picked) {
    for (let lag = Math.max(0, (p - 2) * D); lag <= (p + 2) * D && lag + window.length <= reference.length; lag++) fine = Math.max(fine, ncc(window, reference, lag));
  }
  return fine;
}
