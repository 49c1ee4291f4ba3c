import type { fork } from 'node:child_process';
import { once } from 'node:events';

/** One request/answer with the load-generator process. */
export function ask<T>(child: ReturnType<typeof fork>, msg: object): Promise<T> {
  child.send(msg);
  return once(child, 'message').then(([m]) => m as T);
}

/** The service's RTP range in every bench (below the tests' listening ports). */
export const BENCH_RTP: readonly [number, number] = [10000, 19999];

/**
 * Runs `fn` every `ms` against absolute time, as a TTS source sends: setInterval reschedules
 * from when its callback ran, so a busy client drifts (at 10 ms, 1 ms late a turn is 10%
 * less audio than real time, and the calls' queues run dry).
 */
export function every(ms: number, fn: () => void): { stop(): void } {
  const start = performance.now();
  let k = 0;
  let timer: NodeJS.Timeout | undefined;
  const loop = (): void => {
    k++;
    fn();
    timer = setTimeout(loop, Math.max(0, start + (k + 1) * ms - performance.now()));
  };
  timer = setTimeout(loop, ms);
  return { stop: () => clearTimeout(timer) };
}

/** The service settings every benchmark starts from: a wide port range, no idle timeout. */
export function benchEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    LOG_LEVEL: 'info',
    RTP_SERVICE_PORT_MIN: String(BENCH_RTP[0]),
    RTP_SERVICE_PORT_MAX: String(BENCH_RTP[1]),
    ASSETS_BASE_PATH: '/',
    RTP_SESSION_INACTIVITY_TIMEOUT_SECONDS: '0',
    // BENCH_PRIORITY: the service's MEDIA_PRIORITY (the ai-calls bench compares a list of them).
    ...(process.env.BENCH_PRIORITY && !process.env.BENCH_PRIORITY.includes(',') ? { MEDIA_PRIORITY: process.env.BENCH_PRIORITY } : {}),
    // BENCH_WAKE_WINDOW_MS: the service's MEDIA_WAKE_WINDOW_MS.
    ...(process.env.BENCH_WAKE_WINDOW_MS ? { MEDIA_WAKE_WINDOW_MS: process.env.BENCH_WAKE_WINDOW_MS } : {}),
    ...extra,
  };
}
