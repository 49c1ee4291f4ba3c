import type { fork } from 'node:child_process';
import { once } from 'node:events';

/** One request/answer with the load-generator process. */
export function ask<T>(child: ReturnType<typeof fork>, msg: object): Promise<T> {
  child.send(msg);
  return once(child, 'message').then(([m]) => m as T);
}

/** The service settings every benchmark starts from: a wide port range, no idle timeout. */
export function benchEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    LOG_LEVEL: 'info',
    RTP_SERVICE_PORT_MIN: '10000',
    RTP_SERVICE_PORT_MAX: '19999',
    ASSETS_BASE_PATH: '/',
    RTP_SESSION_INACTIVITY_TIMEOUT_SECONDS: '0',
    ...extra,
  };
}
