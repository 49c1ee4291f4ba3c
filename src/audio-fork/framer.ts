/** Cuts a stream of samples into frames of a fixed size; the frames are new arrays. */
export class Framer {
  readonly #size: number;
  #buf: Int16Array;
  #len = 0;

  constructor(frameSamples: number) {
    this.#size = frameSamples;
    this.#buf = new Int16Array(frameSamples);
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
        this.#buf = new Int16Array(this.#size);
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
