import type { CloseReason } from '../sessions/call-session.ts';
import type { ForkFrame } from './audio-fork.ts';

export interface ForkReaderOptions {
  maxQueueFrames: number;
  onReadable: () => void;
  onDropped?: () => void;
  onCallClosed: (reason: CloseReason) => void;
}

/**
 * One listener of a fork several listeners share: its own bounded queue (a slow reader drops
 * its own oldest frames, nobody else's) and its own sequence, from 0 where it joined.
 */
export class ForkReader {
  readonly #o: ForkReaderOptions;
  readonly #queue: ForkFrame[] = [];
  #base = -1;
  dropped = 0;

  constructor(opts: ForkReaderOptions) {
    this.#o = opts;
  }

  get queued(): number {
    return this.#queue.length;
  }

  shift(): ForkFrame | undefined {
    return this.#queue.shift();
  }

  offer(f: ForkFrame): void {
    if (this.#base < 0) this.#base = f.sequence;
    if (this.#queue.length >= this.#o.maxQueueFrames) {
      this.#queue.shift();
      this.dropped++;
      this.#o.onDropped?.();
    }
    // A listener there from the fork's first frame sees its numbers as they are: no copy per frame.
    this.#queue.push(this.#base === 0 ? f : { ...f, sequence: f.sequence - this.#base, origin: f });
    this.#o.onReadable();
  }

  closed(reason: CloseReason): void {
    this.#o.onCallClosed(reason);
  }
}
