import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { DecodePool } from './decode-pool.ts';
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
  /** The decoding thread stops after this long without a prompt to decode. */
  decoderIdleMs?: number;
  http: { enabled: boolean; maxBytes: number; timeoutMs: number };
}

const MAX_FILE_BYTES = 200 * 1024 * 1024;

/** Turns a prompt URI into PCM at the call's rate, decoding each distinct prompt once. */
export class PromptLoader {
  readonly #o: PromptLoaderOptions;
  readonly #root: string;
  readonly #pool: DecodePool;

  constructor(opts: PromptLoaderOptions) {
    this.#o = opts;
    this.#pool = new DecodePool(opts.decoderIdleMs === undefined ? {} : { idleMs: opts.decoderIdleMs });
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
      return this.#pool.decode({ bytes: ownBuffer(bytes), rawPcmRate: rate, rate: this.#o.rate, maxSeconds: this.#o.maxSeconds, timeoutMs: this.#o.decodeTimeoutMs });
    }
    return this.#decode(bytes);
  }

  /** WAV is parsed, compressed audio goes through ffmpeg; either way off the event loop. */
  #decode(bytes: Uint8Array): Promise<Int16Array> {
    return this.#pool.decode({ bytes: ownBuffer(bytes), rate: this.#o.rate, maxSeconds: this.#o.maxSeconds, timeoutMs: this.#o.decodeTimeoutMs });
  }

  /** Whether the decoding thread is up (it starts with the first prompt to decode). */
  get decoderRunning(): boolean {
    return this.#pool.running;
  }

  close(): Promise<void> {
    return this.#pool.close();
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

/** A standalone copy that can be transferred to the decoder thread. */
function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return copy;
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}
