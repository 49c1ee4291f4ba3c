import { spawn } from 'node:child_process';
import { MediaError } from '../errors/media-error.ts';
import { isSupportedWav, parseWav, readWavInfo, toMono } from './wav.ts';
import type { PcmAudio, WavInfo } from './wav.ts';

export interface DecodeAudioOptions {
  /** Longer audio is refused rather than truncated. */
  maxSeconds: number;
  /** ffmpeg is killed after this long. */
  timeoutMs: number;
  /** The ffmpeg executable; `ffmpeg` from PATH by default. */
  ffmpegPath?: string;
}

export type AudioContainer = 'wav' | 'mp3' | 'unknown';

/** A header with more bytes than this before the samples is not one ffmpeg wrote. */
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_STDERR_BYTES = 8 * 1024;

const invalid = (message: string): MediaError => new MediaError('invalid_argument', message);

/** Recognises the containers by their first bytes (RIFF/WAVE; ID3 tag or MPEG audio frame sync). */
export function sniffAudio(data: Uint8Array): AudioContainer {
  const b = (i: number): number => data[i] ?? -1;
  const ascii = (from: number, text: string): boolean => [...text].every((ch, i) => b(from + i) === ch.charCodeAt(0));
  if ((ascii(0, 'RIFF') || ascii(0, 'RF64')) && ascii(8, 'WAVE')) return 'wav';
  if (ascii(0, 'ID3')) return 'mp3';
  const b1 = b(1);
  // 11 sync bits, then a version other than "reserved" and a layer other than "reserved" (ADTS has 0)
  if (b(0) === 0xff && (b1 & 0xe0) === 0xe0 && ((b1 >> 3) & 3) !== 1 && ((b1 >> 1) & 3) !== 0) return 'mp3';
  return 'unknown';
}

/**
 * Decodes an audio file to mono 16-bit PCM at the file's own sample rate. WAV with
 * PCM/float/G.711 samples is parsed in-process; everything else goes through ffmpeg.
 */
export async function decodeAudio(data: Uint8Array, opts: DecodeAudioOptions): Promise<PcmAudio> {
  const { maxSeconds, timeoutMs } = opts;
  if (!(maxSeconds > 0) || !Number.isFinite(maxSeconds)) throw invalid(`maxSeconds must be a positive number, got ${maxSeconds}`);
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw invalid(`timeoutMs must be a positive number, got ${timeoutMs}`);
  if (data.length === 0) throw invalid('audio is empty');
  if (sniffAudio(data) === 'wav') {
    const info = readWavInfo(data);
    if (isSupportedWav(info)) {
      const frames = Math.floor(info.dataLength / (Math.ceil(info.bitsPerSample / 8) * info.channels));
      if (frames > maxSeconds * info.sampleRate) throw tooLong(maxSeconds);
      const audio = parseWav(data);
      return { sampleRate: audio.sampleRate, channels: 1, samples: toMono(audio) };
    }
    // compressed WAV (ADPCM, GSM, MP3-in-WAV...) is ffmpeg's business
  }
  return decodeWithFfmpeg(data, maxSeconds, timeoutMs, opts.ffmpegPath ?? 'ffmpeg');
}

function tooLong(maxSeconds: number): MediaError {
  return invalid(`audio longer than ${maxSeconds} s`);
}

function decodeWithFfmpeg(data: Uint8Array, maxSeconds: number, timeoutMs: number, ffmpegPath: string): Promise<PcmAudio> {
  // WAV on stdout rather than raw PCM: its header tells the source sample rate, so no probe run is needed
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    '-i', 'pipe:0',
    '-map', '0:a:0', '-ac', '1', '-c:a', 'pcm_s16le',
    '-map_metadata', '-1', '-fflags', '+bitexact', '-f', 'wav', 'pipe:1',
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let received = 0;
    let limit = Number.POSITIVE_INFINITY;
    let stderr = '';
    let settled = false;

    const settle = (error: MediaError | null, audio?: PcmAudio): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        reject(error);
      } else {
        resolve(audio!);
      }
    };
    const timer = setTimeout(() => settle(invalid(`could not decode audio in ${timeoutMs} ms`)), timeoutMs);

    child.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' ? 'ffmpeg is not installed' : `ffmpeg could not be started (${err.code ?? 'error'})`;
      settle(new MediaError('unavailable', `${why}; only WAV audio can be decoded`, { cause: err }));
    });
    child.stdout.on('data', (chunk: Buffer) => {
      if (settled) return;
      chunks.push(chunk);
      received += chunk.length;
      if (limit === Number.POSITIVE_INFINITY) {
        const info = tryReadHeader(chunks, received);
        if (info) limit = info.dataOffset + Math.ceil(maxSeconds * info.sampleRate) * info.channels * 2;
        else if (received > MAX_HEADER_BYTES) settle(new MediaError('internal', 'ffmpeg produced no readable WAV header'));
      }
      if (received > limit) settle(tooLong(maxSeconds));
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_STDERR_BYTES) stderr += chunk.toString('utf8');
    });
    child.on('close', (code, signal) => {
      if (settled) return;
      if (code !== 0) {
        const detail = firstErrorLine(stderr) ?? (signal ? `ffmpeg stopped by ${signal}` : `ffmpeg exited with status ${code}`);
        settle(invalid(`could not decode audio: ${detail}`));
        return;
      }
      let audio: PcmAudio;
      try {
        audio = parseWav(Buffer.concat(chunks, received));
      } catch (err) {
        settle(new MediaError('internal', 'ffmpeg output could not be read', { cause: err }));
        return;
      }
      settle(null, audio);
    });
    // ffmpeg may stop reading early (bad input, size limit); its exit status explains why
    child.stdin.on('error', () => {});
    child.stdin.end(data);
  });
}

function tryReadHeader(chunks: Buffer[], received: number): WavInfo | null {
  try {
    return readWavInfo(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
  } catch {
    return null;
  }
}

/** ffmpeg's first complaint without the stream prefix or the demuxer's memory address. */
function firstErrorLine(stderr: string): string | null {
  for (const raw of stderr.split(/\r?\n/)) {
    const line = raw
      .replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/i, '')
      .replace(/\bpipe:[01]:?\s*/g, '')
      .replace(/(?:\/[\w.+-]+)+/g, '<path>')
      .trim();
    if (line) return line.length > 200 ? `${line.slice(0, 200)}…` : line;
  }
  return null;
}
