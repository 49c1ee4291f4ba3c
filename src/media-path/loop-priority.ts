import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../logging/logger.ts';
import { METRIC_PREFIX } from '../metrics/metrics.ts';

export type PriorityOutcome = { set: number; refused: null } | { set: number; refused: NodeJS.ErrnoException };

/**
 * Gives each of `tids` the nice value `nice`. Stops at the first refusal: the rest would be
 * refused for the same reason (no CAP_SYS_NICE, RLIMIT_NICE too low).
 */
export function applyNice(tids: readonly number[], nice: number, set: (tid: number, nice: number) => void): PriorityOutcome {
  let done = 0;
  for (const tid of tids) {
    try {
      set(tid, nice);
      done++;
    } catch (error) {
      return { set: done, refused: error as NodeJS.ErrnoException };
    }
  }
  return { set: done, refused: null };
}

/** The threads of this process (Linux); elsewhere 0, the calling thread or process. */
function ownThreads(): number[] {
  try {
    return readdirSync('/proc/self/task').map(Number).filter((t) => Number.isInteger(t) && t > 0);
  } catch {
    return [0];
  }
}

/**
 * Runs this process's threads at `nice` (0: as inherited). On a machine shared with other
 * work the media loop otherwise waits its turn for a core: at 200 AI calls on a loaded 2-core
 * machine its thread waited 60-90 ms a second and single waits reached 18 ms, long enough
 * to send a whole frame late. Threads and processes it starts later (the prompt decoder,
 * mediasoup workers) inherit the value. Media servers commonly run raised (FreeSWITCH's
 * unit asks for real-time scheduling); a nice value is the safe form of it for an event
 * loop that can be kept busy, since other work still gets the core, only later.
 */
export function raiseLoopPriority(nice: number, log: Logger, deps: { threads?: () => number[]; set?: (tid: number, nice: number) => void } = {}): PriorityOutcome | null {
  if (nice === 0) return null;
  const outcome = applyNice((deps.threads ?? ownThreads)(), nice, deps.set ?? setPriority);
  if (outcome.refused) {
    log.warn(
      { event: 'MEDIA_PRIORITY_NOT_SET', attributes: { 'process.nice': nice, 'error.code': outcome.refused.code ?? 'unknown' } },
      `the media loop runs at its inherited priority: nice ${nice} was refused (${outcome.refused.code ?? outcome.refused.message}); allow it with CAP_SYS_NICE or RLIMIT_NICE (docker run --ulimit nice=${20 - nice}), or set MEDIA_PRIORITY=0`,
    );
  } else log.info({ event: 'MEDIA_PRIORITY_SET', attributes: { 'process.nice': nice, 'process.threads': outcome.set } }, `the media loop runs at nice ${nice}`);
  return outcome;
}

/** What the media loop got, whatever it asked for: a refusal shows as the inherited value. */
export function registerPriorityMetric(registry: Registry): void {
  new Gauge({
    name: `${METRIC_PREFIX}process_nice`,
    help: 'Nice value the media loop runs at (rtp.priority asks for it; a higher one means it was refused: see MEDIA_PRIORITY_NOT_SET)',
    registers: [registry],
    collect() {
      this.set(getPriority());
    },
  });
}
