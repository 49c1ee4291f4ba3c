import { Worker } from 'node:worker_threads';
import { MediaError, type MediaErrorCode } from '../errors/media-error.ts';

export interface DecodeJob {
  id: number;
  bytes: ArrayBuffer;
  /** Set for raw little-endian 16-bit mono PCM at this rate; else the bytes are sniffed. */
  rawPcmRate?: number;
  rate: number;
  maxSeconds: number;
  timeoutMs: number;
}

export type DecodeReply = { id: number; pcm: Int16Array } | { id: number; error: { code: MediaErrorCode; message: string } };

/**
 * One worker thread that turns prompt bytes into PCM at the call's rate. Started on first
 * use, restarted if it dies; jobs wait in order. A thread is some 17 MB of RSS (measured with
 * its modules in the compile cache, 31 MB without): it stops after `idleMs` without a job
 * (most prompts are cache hits) and starts again when a prompt needs decoding, in about 140 ms.
 */
export class DecodePool {
  #worker: Worker | null = null;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (pcm: Int16Array) => void; reject: (e: Error) => void }>();
  readonly #idleMs: number;
  #idle: NodeJS.Timeout | undefined;

  constructor(opts: { idleMs?: number } = {}) {
    this.#idleMs = opts.idleMs ?? 60_000;
  }

  decode(job: Omit<DecodeJob, 'id'>): Promise<Int16Array> {
    const id = this.#nextId++;
    clearTimeout(this.#idle);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ensure().postMessage({ ...job, id }, [job.bytes]);
    });
  }

  get running(): boolean {
    return this.#worker !== null;
  }

  #settled(): void {
    if (this.#pending.size > 0 || !this.#worker) return;
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => {
      if (this.#pending.size > 0) return;
      const w = this.#worker;
      this.#worker = null;
      void w?.terminate();
    }, this.#idleMs);
    this.#idle.unref();
  }

  async close(): Promise<void> {
    clearTimeout(this.#idle);
    const w = this.#worker;
    this.#worker = null;
    if (w) await w.terminate();
  }

  #ensure(): Worker {
    if (this.#worker) return this.#worker;
    const w = new Worker(new URL('./decode-worker.ts', import.meta.url));
    w.unref();
    w.on('message', (r: DecodeReply) => {
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      if ('pcm' in r) p.resolve(r.pcm);
      else p.reject(new MediaError(r.error.code, r.error.message));
      this.#settled();
    });
    const fail = (err: Error): void => {
      if (this.#worker === w) this.#worker = null;
      for (const [, p] of this.#pending) p.reject(new MediaError('internal', 'prompt decoder failed', { cause: err }));
      this.#pending.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => {
      if (this.#worker === w) fail(new Error(`decoder exited with ${code}`));
    });
    this.#worker = w;
    return w;
  }
}
