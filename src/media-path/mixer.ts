/** Something that contributes 20 ms frames of audio to what a call hears. */
export interface AudioSource {
  /** Adds this source's next frame into `acc` (it sums); returns false when it had nothing. */
  mixInto(acc: Int32Array): boolean;
  /**
   * The frame this source just mixed, already encoded in `codec`, when many calls hear that
   * same frame (a conference's listeners who are not talking): a call that hears only this
   * source sends it as it is instead of encoding its own copy. Null: encode as usual.
   */
  encoded?(codec: 'PCMU' | 'PCMA'): Uint8Array | null;
}

/**
 * Sums every active source into one frame, so injected speech, prompts and echo are heard
 * together and none cuts another off.
 */
export class Mixer {
  readonly #sources = new Set<AudioSource>();
  readonly #acc: Int32Array;
  /** The one source that had audio on the last mix, if exactly one did. */
  #sole: AudioSource | null = null;
  /** A source mixed last, so the sum of the others is known too (see without). */
  #aside: AudioSource | null = null;
  readonly #without: Int16Array;
  #withoutAny = false;

  constructor(frameSamples: number) {
    this.#acc = new Int32Array(frameSamples);
    this.#without = new Int16Array(frameSamples);
  }

  /**
   * Mixes `source` after every other one, so that the last mix's sum without it (formed
   * before any clipping, never by subtracting it from the clipped whole) can be read.
   */
  setAside(source: AudioSource | null): void {
    this.#aside = source;
    this.#withoutAny = false;
  }

  /** The last mix without the source set aside, saturated; null when the others were silent. */
  get without(): Int16Array | null {
    return this.#withoutAny ? this.#without : null;
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

  /** The only source heard on the last mix (null when none or several were). */
  get sole(): AudioSource | null {
    return this.#sole;
  }

  /** Mixes the next frame into `out`; false (and `out` untouched) when every source was silent. */
  mix(out: Int16Array): boolean {
    this.#sole = null;
    this.#withoutAny = false;
    if (this.#sources.size === 0) return false;
    const acc = this.#acc;
    acc.fill(0);
    let heard = 0;
    let last: AudioSource | null = null;
    const aside = this.#aside;
    for (const s of this.#sources) {
      if (s === aside) continue;
      if (s.mixInto(acc)) {
        heard++;
        last = s;
      }
    }
    if (aside) {
      if (heard > 0) {
        this.#withoutAny = true;
        saturateInto(acc, this.#without);
      }
      if (this.#sources.has(aside) && aside.mixInto(acc)) {
        heard++;
        last = aside;
      }
    }
    if (heard === 0) return false;
    if (heard === 1) this.#sole = last;
    for (let i = 0; i < out.length; i++) {
      const v = acc[i]!;
      out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
    return true;
  }
}

function saturateInto(acc: Int32Array, out: Int16Array): void {
  for (let i = 0; i < out.length; i++) {
    const v = acc[i]!;
    out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
}
