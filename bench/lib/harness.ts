import type { fork } from 'node:child_process';
import { once } from 'node:events';

/** One request/answer with the load-generator process. */
export function ask<T>(child: ReturnType<typeof fork>, msg: object): Promise<T> {
  child.send(msg);
  return once(child, 'message').then(([m]) => m as T);
}

/** The service settings every benchmark starts from: a wide port range, no idle timeout. */
/** The service's RTP range in every bench (below the tests' listening ports). */
export const BENCH_RTP: readonly [number, number] = [10000, 19999];

export function benchEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    LOG_LEVEL: 'info',
    RTP_SERVICE_PORT_MIN: String(BENCH_RTP[0]),
    RTP_SERVICE_PORT_MAX: String(BENCH_RTP[1]),
    ASSETS_BASE_PATH: '/',
    RTP_SESSION_INACTIVITY_TIMEOUT_SECONDS: '0',
    ...extra,
  };
}
