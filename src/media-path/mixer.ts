/** Something that contributes 20 ms frames of audio to what a call hears. */
export interface AudioSource {
  /** Adds this source's next frame into `acc` (it sums); returns false when it had nothing. */
  mixInto(acc: Int32Array): boolean;
}

/**
 * Sums every active source into one frame, so injected speech, prompts and echo are heard
 * together and none cuts another off.
 */
export class Mixer {
  readonly #sources = new Set<AudioSource>();
  readonly #acc: Int32Array;

  constructor(frameSamples: number) {
    this.#acc = new Int32Array(frameSamples);
  }

  add(source: AudioSource): void {
    this.#sources.add(source);
  }

  remove(source: AudioSource): void {
    this.#sources.delete(source);
  }

  get size(): number {
    return this.#sources.size;
  }

  /** Mixes the next frame into `out`; false (and `out` untouched) when every source was silent. */
  mix(out: Int16Array): boolean {
    if (this.#sources.size === 0) return false;
    const acc = this.#acc;
    acc.fill(0);
    let any = false;
    for (const s of this.#sources) if (s.mixInto(acc)) any = true;
    if (!any) return false;
    for (let i = 0; i < out.length; i++) {
      const v = acc[i]!;
      out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
    return true;
  }
}
