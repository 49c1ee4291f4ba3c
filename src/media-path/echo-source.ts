import type { AudioSource } from './mixer.ts';

const MAX_FRAMES = 5;

/** Plays the caller's own audio back to them (line tests, latency checks). */
export class EchoSource implements AudioSource {
  readonly #frames: Int16Array[] = [];

  push(frame: Int16Array): void {
    // Bounded: if the caller's clock runs faster than ours, the oldest frames go.
    if (this.#frames.length >= MAX_FRAMES) this.#frames.shift();
    this.#frames.push(frame);
  }

  mixInto(acc: Int32Array): boolean {
    const f = this.#frames.shift();
    if (!f) return false;
    for (let i = 0; i < acc.length; i++) acc[i]! += f[i] ?? 0;
    return true;
  }
}
