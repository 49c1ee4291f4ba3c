export interface TalkSettings {
  /** Mean-square level (dBFS) a frame must reach to count as speech. */
  thresholdDbfs: number;
  /** How long talking lasts after the last loud frame, so pauses between words do not end it. */
  holdMs: number;
}

export type TalkChange = 'started' | 'stopped' | null;

const FRAME_MS = 20;

/**
 * Whether a participant is talking, from the energy of its 20 ms frames: the first frame at
 * or above the threshold starts it (so the first syllable is mixed), and it stops once no
 * frame reached the threshold for the hold time. A missing frame counts as silence.
 */
export class TalkDetector {
  readonly #threshold: number;
  readonly #holdTicks: number;
  #talking = false;
  #quietTicks = 0;
  /** The last frame's level, dBFS (-Infinity for silence). */
  level = -Infinity;

  constructor(s: TalkSettings) {
    this.#threshold = 32768 ** 2 * 10 ** (s.thresholdDbfs / 10);
    this.#holdTicks = Math.max(1, Math.round(s.holdMs / FRAME_MS));
  }

  get talking(): boolean {
    return this.#talking;
  }

  update(frame: Int16Array | null): TalkChange {
    const e = frame ? meanSquare(frame) : 0;
    this.level = e > 0 ? 10 * Math.log10(e / 32768 ** 2) : -Infinity;
    if (e >= this.#threshold) {
      this.#quietTicks = 0;
      if (this.#talking) return null;
      this.#talking = true;
      return 'started';
    }
    if (!this.#talking) return null;
    if (++this.#quietTicks < this.#holdTicks) return null;
    this.#talking = false;
    this.#quietTicks = 0;
    return 'stopped';
  }
}

export function meanSquare(f: Int16Array): number {
  let e = 0;
  for (let i = 0; i < f.length; i++) e += f[i]! * f[i]!;
  return e / f.length;
}
