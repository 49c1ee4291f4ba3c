import { open, type FileHandle } from 'node:fs/promises';
import { wavHeader } from '../codecs/wav.ts';

const HEADER_BYTES = 44;

/**
 * A 16-bit PCM WAV file written while the call runs. Samples are batched and written by
 * one async write at a time, never on the media clock's stack; the header's sizes are
 * filled in at the end, and a file left by a crash is repaired from its length.
 */
export class WavSpool {
  readonly path: string;
  readonly sampleRate: number;
  readonly channels: number;
  #fh: FileHandle;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #dataBytes = 0;
  #writing: Promise<void> = Promise.resolve();
  #error: Error | null = null;
  #closed = false;
  /** Bytes dropped because the disk fell this far behind (never expected; counted). */
  droppedBytes = 0;

  static async create(path: string, sampleRate: number, channels: number): Promise<WavSpool> {
    const fh = await open(path, 'wx');
    await fh.write(wavHeader({ sampleRate, channels, dataBytes: 0 }), 0, HEADER_BYTES, 0);
    return new WavSpool(path, sampleRate, channels, fh);
  }

  /**
   * Goes on writing a file another process left (a call carried on after a crash): its
   * header is repaired first, then `gapMs` of silence stands for the time nobody wrote, so
   * the file's length stays the call's wall time.
   */
  static async resume(path: string, sampleRate: number, channels: number, gapMs: number): Promise<WavSpool> {
    const dataBytes = await repairWavHeader(path, sampleRate, channels);
    const fh = await open(path, 'r+');
    const spool = new WavSpool(path, sampleRate, channels, fh, dataBytes);
    const gapFrames = Math.max(0, Math.round((gapMs * sampleRate) / 1000));
    if (gapFrames > 0) spool.append(new Int16Array(gapFrames * channels), Number.MAX_SAFE_INTEGER);
    return spool;
  }

  private constructor(path: string, sampleRate: number, channels: number, fh: FileHandle, dataBytes = 0) {
    this.path = path;
    this.sampleRate = sampleRate;
    this.channels = channels;
    this.#fh = fh;
    this.#dataBytes = dataBytes;
  }

  get bytesWritten(): number {
    return this.#dataBytes;
  }

  get error(): Error | null {
    return this.#error;
  }

  /** Queues interleaved samples; the buffer is copied, so the caller may reuse it. */
  append(samples: Int16Array, maxBacklogBytes: number): void {
    if (this.#closed) return;
    const bytes = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
    if (this.#pendingBytes + bytes.length > maxBacklogBytes) {
      this.droppedBytes += bytes.length;
      return;
    }
    this.#pending.push(Buffer.from(bytes));
    this.#pendingBytes += bytes.length;
  }

  /** Starts writing what is queued (one write in flight at a time). */
  flush(): Promise<void> {
    if (this.#pending.length === 0) return this.#writing;
    const chunk = Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#writing = this.#writing.then(async () => {
      if (this.#error) return;
      try {
        await this.#fh.write(chunk, 0, chunk.length, HEADER_BYTES + this.#dataBytes);
        this.#dataBytes += chunk.length;
      } catch (err) {
        this.#error = err as Error;
      }
    });
    return this.#writing;
  }

  /** Writes the rest and the final header, syncs and closes. */
  async finish(): Promise<void> {
    if (this.#closed) return this.#writing;
    await this.flush();
    this.#closed = true;
    try {
      await this.#fh.write(wavHeader({ sampleRate: this.sampleRate, channels: this.channels, dataBytes: this.#dataBytes }), 0, HEADER_BYTES, 0);
      await this.#fh.sync();
    } finally {
      await this.#fh.close();
    }
    if (this.#error) throw this.#error;
  }
}

/** Makes a WAV left by a crashed writer valid: sizes from the file length, whole frames only. */
export async function repairWavHeader(path: string, sampleRate: number, channels: number): Promise<number> {
  const fh = await open(path, 'r+');
  try {
    const { size } = await fh.stat();
    const frameBytes = 2 * channels;
    const dataBytes = Math.max(0, Math.floor((size - HEADER_BYTES) / frameBytes) * frameBytes);
    await fh.write(wavHeader({ sampleRate, channels, dataBytes }), 0, HEADER_BYTES, 0);
    await fh.truncate(HEADER_BYTES + dataBytes);
    await fh.sync();
    return dataBytes;
  } finally {
    await fh.close();
  }
}
