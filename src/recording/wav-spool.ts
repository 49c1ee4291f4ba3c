import { open, type FileHandle } from 'node:fs/promises';
import { wavHeader } from '../codecs/wav.ts';

const HEADER_BYTES = 44;
/** Samples are gathered in blocks of this size (a second of 8 kHz stereo), reused once written. */
const BLOCK_BYTES = 32 * 1024;
/** Written blocks kept for reuse: one being filled while one is written needs two. */
const SPARE_BLOCKS = 2;

/**
 * A 16-bit PCM WAV file written while the call runs. Samples are gathered in reused blocks
 * and written by one async write at a time, never on the media clock's stack: a frame costs
 * a copy, no allocation (200 recorded calls allocated 19 MB a second of frames, which made
 * full collections run). The header's sizes are filled in at the end, and a file left by a
 * crash is repaired from its length.
 */
export class WavSpool {
  readonly path: string;
  readonly sampleRate: number;
  readonly channels: number;
  #fh: FileHandle;
  /** The block being filled, as bytes and as samples (the same memory). */
  #block: Buffer;
  #blockSamples: Int16Array;
  #blockUsed = 0;
  /** Full blocks not yet handed to a write. */
  #full: Buffer[] = [];
  readonly #spare: Buffer[] = [];
  /** Bytes taken and not yet on disk: gathered, or waiting for their write. */
  #unwritten = 0;
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
    this.#block = Buffer.allocUnsafeSlow(BLOCK_BYTES);
    this.#blockSamples = samplesOf(this.#block);
  }

  get bytesWritten(): number {
    return this.#dataBytes;
  }

  get error(): Error | null {
    return this.#error;
  }

  /** Takes interleaved samples (copied: the caller may reuse its array). */
  append(samples: Int16Array, maxBacklogBytes: number): void {
    if (!this.#admit(samples.length * 2, maxBacklogBytes)) return;
    let at = 0;
    while (at < samples.length) {
      const n = Math.min(samples.length - at, this.#room());
      this.#blockSamples.set(samples.subarray(at, at + n), this.#blockUsed / 2);
      this.#blockUsed += n * 2;
      at += n;
    }
  }

  /** Takes two channels, interleaving them as they are copied (no array of its own per frame). */
  appendStereo(left: Int16Array, right: Int16Array, maxBacklogBytes: number): void {
    const frames = Math.min(left.length, right.length);
    if (!this.#admit(frames * 4, maxBacklogBytes)) return;
    let i = 0;
    while (i < frames) {
      const fit = this.#room() >> 1;
      if (fit === 0) {
        this.#retireBlock();
        continue;
      }
      const n = Math.min(frames - i, fit);
      const out = this.#blockSamples;
      let o = this.#blockUsed / 2;
      for (const end = i + n; i < end; i++) {
        out[o++] = left[i]!;
        out[o++] = right[i]!;
      }
      this.#blockUsed = o * 2;
    }
  }

  /** Starts writing what is gathered (one write in flight at a time). */
  flush(): Promise<void> {
    if (this.#blockUsed > 0) this.#retireBlock();
    if (this.#full.length === 0) return this.#writing;
    const blocks = this.#full;
    this.#full = [];
    this.#writing = this.#writing.then(async () => {
      const bytes = blocks.reduce((sum, b) => sum + b.length, 0);
      try {
        if (!this.#error) {
          await this.#fh.writev(blocks, HEADER_BYTES + this.#dataBytes);
          this.#dataBytes += bytes;
        }
      } catch (err) {
        this.#error = err as Error;
      } finally {
        this.#unwritten -= bytes;
        for (const b of blocks) if (b.buffer.byteLength === BLOCK_BYTES && this.#spare.length < SPARE_BLOCKS) this.#spare.push(Buffer.from(b.buffer, 0, BLOCK_BYTES));
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

  #admit(bytes: number, maxBacklogBytes: number): boolean {
    if (this.#closed) return false;
    if (this.#unwritten + bytes > maxBacklogBytes) {
      this.droppedBytes += bytes;
      return false;
    }
    this.#unwritten += bytes;
    return true;
  }

  /** Samples the block still has room for, starting a new block when it is full. */
  #room(): number {
    if (this.#blockUsed === BLOCK_BYTES) this.#retireBlock();
    return (BLOCK_BYTES - this.#blockUsed) / 2;
  }

  #retireBlock(): void {
    this.#full.push(this.#block.subarray(0, this.#blockUsed));
    this.#block = this.#spare.pop() ?? Buffer.allocUnsafeSlow(BLOCK_BYTES);
    this.#blockSamples = samplesOf(this.#block);
    this.#blockUsed = 0;
  }
}

function samplesOf(block: Buffer): Int16Array {
  return new Int16Array(block.buffer, block.byteOffset, block.length / 2);
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
