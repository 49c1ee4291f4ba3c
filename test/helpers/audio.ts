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

function energy(x: Int16Array, start: number, n: number): number {
  let e = 0;
  for (let i = start; i < start + n && i < x.length; i++) e += x[i]! * x[i]!;
  return e;
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

/** A sine tone of `ms` at `rate`. */
export const tone = (hz: number, ms: number, rate: number, amp = 8000): Int16Array =>
  Int16Array.from({ length: (rate * ms) / 1000 }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * hz * i) / rate)));

/** A tone's frequency from its zero crossings, over the samples loud enough to count. */
export function dominantHz(pcm: Int16Array, rate: number): number {
  let crossings = 0;
  let loud = 0;
  for (let i = 1; i < pcm.length; i++) {
    if (Math.abs(pcm[i]!) < 500 && Math.abs(pcm[i - 1]!) < 500) continue;
    loud++;
    if (pcm[i - 1]! < 0 !== pcm[i]! < 0) crossings++;
  }
  return loud === 0 ? 0 : (crossings / 2) * (rate / loud);
}

/**
 * The amplitude of `hz` in `pcm` as dBFS of a sine's peak (Hann-windowed Goertzel): about
 * -14.7 for a tone of amplitude 6000, far below -40 when the tone is absent.
 */
export function toneDbfs(pcm: Int16Array, rate: number, hz: number): number {
  const n = pcm.length;
  const k = (2 * Math.PI * hz) / rate;
  const coeff = 2 * Math.cos(k);
  let s1 = 0;
  let s2 = 0;
  let wsum = 0;
  for (let i = 0; i < n; i++) {
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1));
    wsum += w;
    const s0 = pcm[i]! * w + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const re = s1 - s2 * Math.cos(k);
  const im = s2 * Math.sin(k);
  const amp = (2 * Math.sqrt(re * re + im * im)) / wsum;
  return amp > 0 ? 20 * Math.log10(amp / 32768) : -200;
}
