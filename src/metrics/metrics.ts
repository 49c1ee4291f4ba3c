import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { replaceLoopDelayGauges } from './loop-delay.ts';

export const METRIC_PREFIX = 'sentiric_media_';

/**
 * A counter whose value is read when Prometheus scrapes: hot paths keep plain fields (no
 * metric call per packet or frame) and `read` sums them, with what closed objects left.
 */
export function scrapedCounter(registry: Registry, name: string, help: string, read: () => number): Counter {
  return new Counter({
    name: `${METRIC_PREFIX}${name}`,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** The service's metrics, on a registry of its own (never prom-client's global one). */
export interface Metrics {
  readonly registry: Registry;
  readonly activeSessions: Gauge;
  readonly grpcRequests: Counter<'method' | 'code'>;
  readonly grpcDuration: Histogram<'method'>;
  readonly workersAlive: Gauge;
  readonly workerDeaths: Counter;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  replaceLoopDelayGauges(registry, METRIC_PREFIX);
  const registers = [registry];
  return {
    registry,
    activeSessions: new Gauge({ name: `${METRIC_PREFIX}active_sessions`, help: 'Call sessions currently open', registers }),
    grpcRequests: new Counter({
      name: `${METRIC_PREFIX}grpc_requests_total`,
      help: 'gRPC requests finished, by method and status code',
      labelNames: ['method', 'code'] as const,
      registers,
    }),
    grpcDuration: new Histogram({
      name: `${METRIC_PREFIX}grpc_request_duration_seconds`,
      help: 'gRPC request latency (unary: until the answer; streams: until the end)',
      labelNames: ['method'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300],
      registers,
    }),
    workersAlive: new Gauge({ name: `${METRIC_PREFIX}workers_alive`, help: 'mediasoup workers running', registers }),
    workerDeaths: new Counter({ name: `${METRIC_PREFIX}worker_deaths_total`, help: 'mediasoup workers that died unexpectedly', registers }),
  };
}
