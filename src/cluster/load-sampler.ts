import { monitorEventLoopDelay, type ELDHistogram } from 'node:perf_hooks';
import type { ShardLoad } from './placement.ts';

/** The probe timer's period: the delay is how much later than this it fires. */
const RESOLUTION_MS = 10;

/**
 * The load signal a shard reports: how late a 10 ms timer fires (the event loop's delay, the
 * first thing that breaks a media clock's cadence), CPU since the last report, and calls.
 * The delay is the 95th percentile since the previous report (half a second at the shard's
 * pace: some 50 probes), so one GC pause does not close the shard to new calls while a loop
 * that is late again and again does. Node's own delay monitor probes the loop: a JavaScript
 * timer firing 100 times a second cost an idle process 0.7% of a core (measured), a second
 * native monitor beside the metrics' one nothing measurable.
 */
export class LoadSampler {
  #probe: ELDHistogram | undefined;
  #cpuAt = process.cpuUsage();
  #cpuTime = performance.now();
  #cpu = -1;
  readonly #sessions: () => number;

  constructor(sessions: () => number) {
    this.#sessions = sessions;
  }

  start(): void {
    this.#probe = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.#probe.enable();
  }

  stop(): void {
    this.#probe?.disable();
  }

  /** The load now; CPU is averaged since the previous call, the delay taken over it. */
  read(): ShardLoad {
    const now = performance.now();
    const cpu = process.cpuUsage(this.#cpuAt);
    const elapsedMs = Math.max(1, now - this.#cpuTime);
    this.#cpuAt = process.cpuUsage();
    this.#cpuTime = now;
    // Smoothed over about a second: one report's CPU jumps with a GC or a burst of set-ups.
    const sample = (cpu.user + cpu.system) / 1000 / elapsedMs;
    this.#cpu = this.#cpu < 0 ? sample : 0.5 * this.#cpu + 0.5 * sample;
    return { loopLagMs: this.#delayP95(), cpu: this.#cpu, sessions: this.#sessions() };
  }

  #delayP95(): number {
    const probe = this.#probe;
    if (!probe || probe.count === 0) return 0;
    // The probe records the time between firings: the timer's own period is not delay.
    const ms = Math.max(0, probe.percentile(95) / 1e6 - RESOLUTION_MS);
    probe.reset();
    return ms;
  }
}
