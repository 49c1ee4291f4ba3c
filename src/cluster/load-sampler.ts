import type { ShardLoad } from './placement.ts';

const SAMPLE_MS = 10;
/** Lateness samples kept: one second of them. */
const WINDOW = 100;

/**
 * The load signal a shard reports: how late a 10 ms timer fires (the event loop's delay, the
 * first thing that breaks a media clock's cadence), CPU since the last report, and calls.
 * The delay is the 95th percentile over the last second, so one GC pause does not close the
 * shard to new calls while a loop that is late again and again does.
 */
export class LoadSampler {
  readonly #lateness = new Float64Array(WINDOW);
  #filled = 0;
  #next = 0;
  #expected = 0;
  #timer: NodeJS.Timeout | undefined;
  #cpuAt = process.cpuUsage();
  #cpuTime = performance.now();
  #cpu = -1;
  readonly #sessions: () => number;

  constructor(sessions: () => number) {
    this.#sessions = sessions;
  }

  start(): void {
    this.#expected = performance.now() + SAMPLE_MS;
    this.#timer = setInterval(() => this.#sample(), SAMPLE_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** The load now; CPU is averaged since the previous call. */
  read(): ShardLoad {
    const now = performance.now();
    const cpu = process.cpuUsage(this.#cpuAt);
    const elapsedMs = Math.max(1, now - this.#cpuTime);
    this.#cpuAt = process.cpuUsage();
    this.#cpuTime = now;
    // Smoothed over about a second: one report's CPU jumps with a GC or a burst of set-ups.
    const sample = (cpu.user + cpu.system) / 1000 / elapsedMs;
    this.#cpu = this.#cpu < 0 ? sample : 0.5 * this.#cpu + 0.5 * sample;
    return { loopLagMs: this.#percentile(0.95), cpu: this.#cpu, sessions: this.#sessions() };
  }

  #sample(): void {
    const now = performance.now();
    this.#lateness[this.#next] = Math.max(0, now - this.#expected);
    this.#next = (this.#next + 1) % WINDOW;
    this.#filled = Math.min(WINDOW, this.#filled + 1);
    // Node schedules an interval's next run from when this one ran, so lateness is per interval.
    this.#expected = now + SAMPLE_MS;
  }

  #percentile(p: number): number {
    if (this.#filled === 0) return 0;
    const sorted = Array.from(this.#lateness.subarray(0, this.#filled)).sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  }
}
