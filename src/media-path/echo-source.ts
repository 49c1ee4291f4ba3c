import type { AudioSource } from './mixer.ts';

const MAX_FRAMES = 50;
/** Frames buffered before echo starts: absorbs the phase between the caller's clock and ours. */
const PRIME_FRAMES = 2;
/** After this many empty ticks the caller is gone; echo stops until audio returns. */
const MAX_UNDERRUN_TICKS = 25;

/** Plays the caller's own audio back to them (line tests, latency checks). */
export class EchoSource implements AudioSource {
  readonly #frames: Int16Array[] = [];
  #primed = false;
  #underruns = 0;

  push(frame: Int16Array): void {
    // Bounded: if the caller's clock runs faster than ours, the oldest frames go.
    if (this.#frames.length >= MAX_FRAMES) this.#frames.shift();
    this.#frames.push(frame);
  }

  mixInto(acc: Int32Array): boolean {
    if (!this.#primed) {
      if (this.#frames.length < PRIME_FRAMES) return false;
      this.#primed = true;
    }
    const f = this.#frames.shift();
    if (!f) {
      // A late frame: keep the outbound stream continuous with a silent frame.
      if (++this.#underruns > MAX_UNDERRUN_TICKS) {
        this.#primed = false;
        this.#underruns = 0;
        return false;
      }
      return true;
    }
    this.#underruns = 0;
    for (let i = 0; i < acc.length; i++) acc[i]! += f[i] ?? 0;
    return true;
  }
}
