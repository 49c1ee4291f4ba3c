import type { AudioSource } from '../media-path/mixer.ts';

export type PlaybackEnd = 'completed' | 'stopped';

export interface QueuedPrompt {
  readonly id: number;
  readonly uri: string;
  readonly traceId: string;
  readonly samples: Int16Array;
}

/**
 * The call's prompts, played one after another in the order PlayAudio queued them. A
 * source of the call's mixer: it advances only while the mixer pulls frames.
 */
export class PlaybackQueue implements AudioSource {
  readonly #items: QueuedPrompt[] = [];
  readonly #onEnd: (p: QueuedPrompt, end: PlaybackEnd) => void;
  readonly #maxQueued: number;
  #pos = 0;
  #nextId = 1;

  constructor(opts: { onEnd: (p: QueuedPrompt, end: PlaybackEnd) => void; maxQueued?: number }) {
    this.#onEnd = opts.onEnd;
    this.#maxQueued = opts.maxQueued ?? 64;
  }

  get length(): number {
    return this.#items.length;
  }

  /** The prompts playing and queued, in order. */
  prompts(): readonly QueuedPrompt[] {
    return this.#items;
  }

  /** Queued milliseconds still to play at `rate`. */
  remainingMs(rate: number): number {
    let n = -this.#pos;
    for (const it of this.#items) n += it.samples.length;
    return (n * 1000) / rate;
  }

  /** Returns the queued prompt, or null when the queue is full. */
  enqueue(uri: string, traceId: string, samples: Int16Array): QueuedPrompt | null {
    if (this.#items.length >= this.#maxQueued) return null;
    const item: QueuedPrompt = { id: this.#nextId++, uri, traceId, samples };
    this.#items.push(item);
    return item;
  }

  /** Barge-in: drops what is playing and everything queued; returns how many were stopped. */
  stop(): number {
    const stopped = this.#items.splice(0);
    this.#pos = 0;
    for (const it of stopped) this.#onEnd(it, 'stopped');
    return stopped.length;
  }

  mixInto(acc: Int32Array): boolean {
    let written = 0;
    while (written < acc.length) {
      const cur = this.#items[0];
      if (!cur) break;
      const n = Math.min(acc.length - written, cur.samples.length - this.#pos);
      for (let i = 0; i < n; i++) acc[written + i]! += cur.samples[this.#pos + i]!;
      written += n;
      this.#pos += n;
      if (this.#pos >= cur.samples.length) {
        this.#items.shift();
        this.#pos = 0;
        // Announced when its last sample was handed to the call; the next prompt follows
        // in the same frame, without a gap.
        this.#onEnd(cur, 'completed');
      }
    }
    return written > 0;
  }
}
