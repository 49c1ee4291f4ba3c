/**
 * A frame's array from Node's pooled, uninitialised memory: every sample is written before
 * the frame leaves, so zeroing it first (as `new Int16Array` does) is wasted, per frame.
 */
function frameArray(samples: number): Int16Array {
  const b = Buffer.allocUnsafe(samples * 2);
  return new Int16Array(b.buffer, b.byteOffset, samples);
}

/** Cuts a stream of samples into frames of a fixed size; the frames are new arrays. */
export class Framer {
  readonly #size: number;
  #buf: Int16Array;
  #len = 0;

  constructor(frameSamples: number) {
    this.#size = frameSamples;
    this.#buf = frameArray(frameSamples);
  }

  push(samples: Int16Array, emit: (frame: Int16Array) => void): void {
    let off = 0;
    while (off < samples.length) {
      const n = Math.min(samples.length - off, this.#size - this.#len);
      this.#buf.set(samples.subarray(off, off + n), this.#len);
      this.#len += n;
      off += n;
      if (this.#len === this.#size) {
        const frame = this.#buf;
        this.#buf = frameArray(this.#size);
        this.#len = 0;
        emit(frame);
      }
    }
  }

  /** Buffered samples waiting for a full frame. */
  get buffered(): number {
    return this.#len;
  }
}
