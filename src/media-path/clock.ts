import { performance } from 'node:perf_hooks';

/** Something driven every 20 ms by the service clock. */
export interface Clocked {
  tick(nowMs: number): void;
}

export const FRAME_MS = 20;

/**
 * One timer for every call. Calls are spread over `slots` phases of the 20 ms period, so
 * hundreds of calls do not all encode and send in the same millisecond; each phase is
 * scheduled against absolute time, so timer lateness never accumulates into drift.
 */
export class MediaClock {
  readonly #slots: Set<Clocked>[];
  readonly #slotMs: number;
  readonly #onError: (err: unknown) => void;
  #next = 0;
  #slot = 0;
  #timer: NodeJS.Timeout | undefined;
  #count = 0;
  #lateTicks = 0;
  #worstLateMs = 0;
  /** Recent late ticks (time, lateness) for diagnosis; bounded. */
  readonly recentLate: { atMs: number; lateMs: number }[] = [];

  constructor(opts: { slots?: number; onError: (err: unknown) => void }) {
    const n = opts.slots ?? 4;
    this.#slots = Array.from({ length: n }, () => new Set<Clocked>());
    this.#slotMs = FRAME_MS / n;
    this.#onError = opts.onError;
  }

  /** Ticks that ran more than one slot late (the event loop was busy). */
  get lateTicks(): number {
    return this.#lateTicks;
  }

  /** The latest any tick ran since the last call (reset on read), for the metric. */
  takeWorstLateMs(): number {
    const w = this.#worstLateMs;
    this.#worstLateMs = 0;
    return w;
  }

  add(c: Clocked): void {
    let best = this.#slots[0]!;
    for (const s of this.#slots) if (s.size < best.size) best = s;
    best.add(c);
    if (++this.#count === 1) this.#start();
  }

  remove(c: Clocked): void {
    for (const s of this.#slots) {
      if (s.delete(c)) {
        if (--this.#count === 0) this.#stop();
        return;
      }
    }
  }

  stop(): void {
    this.#stop();
    for (const s of this.#slots) s.clear();
    this.#count = 0;
  }

  #start(): void {
    this.#next = performance.now() + this.#slotMs;
    this.#schedule();
  }

  #stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => this.#run(), Math.max(0, this.#next - performance.now()));
  }

  #run(): void {
    let now = performance.now();
    // Catch up on every slot that is due, so each call still gets 50 ticks per second.
    for (let guard = 0; guard < 50 && now >= this.#next; guard++) {
      const late = now - this.#next;
      if (late > this.#slotMs) {
        this.#lateTicks++;
        if (this.recentLate.length >= 64) this.recentLate.shift();
        this.recentLate.push({ atMs: now, lateMs: late });
      }
      if (late > this.#worstLateMs) this.#worstLateMs = late;
      for (const c of this.#slots[this.#slot]!) {
        try {
          c.tick(now);
        } catch (err) {
          this.#onError(err);
        }
      }
      this.#slot = (this.#slot + 1) % this.#slots.length;
      this.#next += this.#slotMs;
      now = performance.now();
    }
    if (now - this.#next > 1000) this.#next = now + this.#slotMs;
    if (this.#count > 0) this.#schedule();
  }
}
