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
 *
 * A call that starts to talk may be moved onto the phase that fires next (`expedite`), so
 * its first packet does not wait up to a frame time for its own phase; `settle` moves it
 * back once it is silent, skipping the tick it gained, so every call still ticks exactly
 * once per 20 ms of wall time over its life (its recordings and forks stay on wall time).
 */
export class MediaClock {
  readonly #slots: Set<Clocked>[];
  readonly #slotMs: number;
  readonly #onError: (err: unknown) => void;
  #next = 0;
  #slot = 0;
  /** Slot firings so far; the one at #next is step #step (#slot === #step % slots). */
  #step = 0;
  #running = false;
  /**
   * Clocked that are off their own phase: the step of their next tick, and of the tick
   * they would have next on their own phase (never earlier). Empty in steady state.
   */
  readonly #moved = new Map<Clocked, { next: number; home: number }>();
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
    this.#moved.delete(c);
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
    this.#moved.clear();
    this.#count = 0;
  }

  /**
   * Moves `c` onto the slot that fires next (within 20 / slots ms), for a talk spurt that
   * should start now rather than on `c`'s own phase; `c` then ticks every 20 ms from there.
   * Meant for a silent `c`: the interval since its previous tick shrinks. Returns true while
   * `c` is ahead of its own phase (then call `settle` once it is silent again).
   */
  expedite(c: Clocked): boolean {
    if (this.#running || this.#count === 0) return false;
    const n = this.#slots.length;
    const m = this.#moved.get(c);
    let next: number;
    if (m) next = m.next;
    else {
      const b = this.#slots.findIndex((s) => s.has(c));
      if (b < 0) return false;
      next = this.#step + ((b - (this.#step % n) + n) % n);
    }
    const soonest = this.#step;
    if (next !== soonest) {
      this.#slots[next % n]!.delete(c);
      this.#slots[soonest % n]!.add(c);
      if (m) m.next = soonest;
      else this.#moved.set(c, { next: soonest, home: next });
    }
    const moved = this.#moved.get(c);
    return moved !== undefined && moved.next !== moved.home;
  }

  /**
   * Puts an expedited `c` back on its own phase: its next tick is the one it would have had
   * (the tick it gained is skipped), so the interval is longer by what expedite took. Call
   * while `c` is silent; a no-op for a `c` on its own phase.
   */
  settle(c: Clocked): void {
    const m = this.#moved.get(c);
    if (!m || m.next === m.home) return;
    const n = this.#slots.length;
    if (m.next % n !== m.home % n) {
      this.#slots[m.next % n]!.delete(c);
      this.#slots[m.home % n]!.add(c);
    }
    m.next = m.home;
  }

  /** Whether `c`, in the slot firing at `step`, ticks now (moved ones may be skipping). */
  #due(c: Clocked, step: number): boolean {
    const m = this.#moved.get(c);
    if (!m) return true;
    if (m.next !== step) return false;
    const n = this.#slots.length;
    m.next += n;
    m.home += n;
    if (m.next === m.home) this.#moved.delete(c);
    return true;
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
    this.#running = true;
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
      const moved = this.#moved.size > 0;
      for (const c of this.#slots[this.#slot]!) {
        if (moved && !this.#due(c, this.#step)) continue;
        try {
          c.tick(now);
        } catch (err) {
          this.#onError(err);
        }
      }
      this.#step++;
      this.#slot = this.#step % this.#slots.length;
      this.#next += this.#slotMs;
      now = performance.now();
    }
    if (now - this.#next > 1000) this.#next = now + this.#slotMs;
    this.#running = false;
    if (this.#count > 0) this.#schedule();
  }
}
