/**
 * One conference tick's mix. Every contribution is summed in 32 bits; a listener who
 * contributed hears the total minus its own contribution, formed before anything is clipped,
 * and only then saturated to 16 bits. Many loud talkers therefore clip (saturate) and never
 * wrap, and nobody's own voice comes back through the arithmetic. Listeners who contributed
 * nothing all hear the same frame: the saturated total, computed once.
 */
export class MixMinus {
  readonly total: Int32Array;
  /** The saturated total: what every listener who did not contribute hears. */
  readonly shared: Int16Array;
  #contributors = 0;

  constructor(frameSamples: number) {
    this.total = new Int32Array(frameSamples);
    this.shared = new Int16Array(frameSamples);
  }

  /** Contributions this tick. */
  get contributors(): number {
    return this.#contributors;
  }

  begin(): void {
    if (this.#contributors > 0) this.total.fill(0);
    this.#contributors = 0;
  }

  /**
   * Adds `frame`, scaled by `gain`, to the total and keeps the scaled samples in `own` (the
   * contributor's own buffer, for its mix-minus).
   */
  add(frame: Int16Array, gain: number, own: Int32Array): void {
    const t = this.total;
    const n = t.length;
    if (gain === 1) {
      for (let i = 0; i < n; i++) {
        const v = frame[i]!;
        own[i] = v;
        t[i]! += v;
      }
    } else {
      for (let i = 0; i < n; i++) {
        const v = Math.round(frame[i]! * gain);
        own[i] = v;
        t[i]! += v;
      }
    }
    this.#contributors++;
  }

  /** Adds a contribution nobody is excluded from (the conference's own prompts). */
  addScaled(samples: Int32Array): void {
    const t = this.total;
    for (let i = 0; i < t.length; i++) t[i]! += samples[i]!;
    this.#contributors++;
  }

  /** Forms the shared frame; false when nobody contributed (then everyone hears nothing). */
  finish(): boolean {
    if (this.#contributors === 0) return false;
    saturate(this.total, this.shared);
    return true;
  }

  /** What the contributor whose scaled samples are `own` hears: the others, saturated. */
  minus(own: Int32Array, out: Int16Array): boolean {
    if (this.#contributors <= 1) return false;
    const t = this.total;
    for (let i = 0; i < out.length; i++) {
      const v = t[i]! - own[i]!;
      out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
    return true;
  }
}

export function saturate(from: Int32Array, out: Int16Array): void {
  for (let i = 0; i < out.length; i++) {
    const v = from[i]!;
    out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
}

/** A gain in dB as the factor samples are multiplied by. */
export const gainFactor = (db: number): number => (db === 0 ? 1 : 10 ** (db / 20));
