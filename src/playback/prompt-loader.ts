import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { decodeAudio } from '../codecs/decode-audio.ts';
import { resample } from '../codecs/resampler.ts';
import { toMono, type PcmAudio } from '../codecs/wav.ts';
import { MediaError, invalidArgument } from '../errors/media-error.ts';
import type { AudioUri } from './audio-uri.ts';
import type { PromptCache } from './prompt-cache.ts';

export interface PromptLoaderOptions {
  assetsRoot: string;
  cache: PromptCache;
  /** The call's audio rate (G.711: 8000). */
  rate: number;
  maxSeconds: number;
  decodeTimeoutMs: number;
  http: { enabled: boolean; maxBytes: number; timeoutMs: number };
}

const MAX_FILE_BYTES = 200 * 1024 * 1024;

/** Turns a prompt URI into PCM at the call's rate, decoding each distinct prompt once. */
export class PromptLoader {
  readonly #o: PromptLoaderOptions;
  readonly #root: string;

  constructor(opts: PromptLoaderOptions) {
    this.#o = opts;
    this.#root = resolve(opts.assetsRoot);
  }

  async load(uri: Exclude<AudioUri, { kind: 'control' }>): Promise<Int16Array> {
    switch (uri.kind) {
      case 'file': {
        const path = await this.#resolveFile(uri.path);
        const st = await stat(path);
        if (!st.isFile()) throw invalidArgument('file:// URI does not name a regular file');
        if (st.size > MAX_FILE_BYTES) throw invalidArgument(`prompt file larger than ${MAX_FILE_BYTES} bytes`);
        return this.#cached(`file:${path}:${st.mtimeMs}:${st.size}`, async () => this.#decode(await readFile(path)));
      }
      case 'data': {
        const key = `data:${createHash('sha1').update(uri.mediaType).update(uri.bytes).digest('hex')}`;
        return this.#cached(key, () => this.#decodeData(uri.mediaType, uri.params, uri.bytes));
      }
      case 'http':
        if (!this.#o.http.enabled) throw new MediaError('failed_precondition', 'http(s) prompts are disabled on this service (playback.http_enabled)');
        return this.#cached(`http:${uri.url}`, async () => this.#decode(await this.#fetch(uri.url)));
    }
  }

  async #resolveFile(path: string): Promise<string> {
    const rel = path.replace(/^\/+/, '');
    const candidate = isAbsolute(path) && inside(this.#root, resolve(path)) ? resolve(path) : resolve(this.#root, rel);
    if (!inside(this.#root, candidate)) throw invalidArgument('file:// URI points outside the assets directory');
    let real: string;
    try {
      real = await realpath(candidate);
    } catch {
      throw new MediaError('not_found', `prompt not found: ${relative(this.#root, candidate)}`);
    }
    // A symbolic link must not lead out of the assets directory either.
    const realRoot = await realpath(this.#root).catch(() => this.#root);
    if (!inside(realRoot, real)) throw invalidArgument('file:// URI points outside the assets directory');
    return real;
  }

  async #cached(key: string, load: () => Promise<Int16Array>): Promise<Int16Array> {
    const hit = this.#o.cache.get(key);
    if (hit) return hit;
    const pcm = await load();
    this.#o.cache.set(key, pcm);
    return pcm;
  }

  async #decodeData(mediaType: string, params: Record<string, string>, bytes: Buffer): Promise<Int16Array> {
    if (mediaType === 'audio/pcm' || mediaType === 'audio/l16') {
      // Raw 16-bit little-endian mono; 8 kHz unless the URI says otherwise (;rate=16000).
      const rate = Number(params.rate ?? this.#o.rate);
      if (!Number.isInteger(rate) || rate < 4000 || rate > 192000) throw invalidArgument(`data:audio/pcm rate must be 4000-192000, got ${params.rate}`);
      if (bytes.length % 2 !== 0) throw invalidArgument('data:audio/pcm carries an odd number of bytes (16-bit samples expected)');
      const samples = new Int16Array(bytes.length / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(i * 2);
      return this.#toCallRate({ sampleRate: rate, channels: 1, samples });
    }
    return this.#decode(bytes);
  }

  async #decode(bytes: Uint8Array): Promise<Int16Array> {
    // WAV is parsed in-process; compressed WAV, MP3 and the rest go through ffmpeg.
    return this.#toCallRate(await decodeAudio(bytes, { maxSeconds: this.#o.maxSeconds, timeoutMs: this.#o.decodeTimeoutMs }));
  }

  #toCallRate(audio: PcmAudio): Int16Array {
    const mono = audio.channels === 1 ? audio.samples : toMono(audio);
    if (mono.length / audio.sampleRate > this.#o.maxSeconds) throw invalidArgument(`prompt longer than ${this.#o.maxSeconds} s`);
    if (mono.length === 0) throw invalidArgument('prompt contains no audio');
    return audio.sampleRate === this.#o.rate ? mono : resample(mono, audio.sampleRate, this.#o.rate);
  }

  async #fetch(url: string): Promise<Uint8Array> {
    const { maxBytes, timeoutMs } = this.#o.http;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
    } catch {
      throw new MediaError('unavailable', `could not fetch the prompt within ${timeoutMs} ms`);
    }
    if (!res.ok || !res.body) throw new MediaError(res.status === 404 ? 'not_found' : 'unavailable', `prompt fetch answered HTTP ${res.status}`);
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of res.body) {
      total += chunk.length;
      if (total > maxBytes) throw invalidArgument(`prompt larger than ${maxBytes} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}
