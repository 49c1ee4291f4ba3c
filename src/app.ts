import type { DestinationStream } from 'pino';
import type { LoadedConfig } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { HealthState, healthHandlers } from './grpc/health.ts';
import { mediaServiceHandlers } from './grpc/media-service.ts';
import { GrpcServer } from './grpc/server.ts';
import { HttpServer } from './http/server.ts';
import { createLogging, type Logger, type Logging } from './logging/logger.ts';
import { WorkerPool } from './media-engine/worker-pool.ts';
import { createMetrics, type Metrics } from './metrics/metrics.ts';

/** Everything the handlers need, built once here and passed down; no module holds state. */
export interface AppState {
  readonly config: Readonly<Config>;
  readonly version: string;
  readonly logging: Logging;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly workers: WorkerPool;
  readonly health: HealthState;
}

export interface App {
  readonly state: AppState;
  start(): Promise<{ grpcPort: number; httpPort: number }>;
  /** Stop accepting, drain, close workers. Idempotent. */
  stop(reason: string): Promise<void>;
}

export interface AppOptions {
  version: string;
  logDestination?: DestinationStream;
}

export async function createApp(loaded: LoadedConfig, opts: AppOptions): Promise<App> {
  const { config } = loaded;
  const logging = createLogging({ config, version: opts.version, ...(opts.logDestination ? { destination: opts.logDestination } : {}) });
  const log = logging.process;
  log.info(
    { event: 'CONFIG_LOADED', attributes: { 'config.toml': loaded.files.toml, 'config.dotenv': loaded.files.dotenv } },
    'configuration loaded',
  );
  const metrics = createMetrics();
  const health = new HealthState(log);
  const workers = await WorkerPool.create({ config: config.mediasoup, logger: log, metrics });
  const state: AppState = { config, version: opts.version, logging, log, metrics, workers, health };

  const deps = { logging, metrics };
  const grpcServer = new GrpcServer({
    config: config.grpc,
    logger: log,
    services: { media: mediaServiceHandlers(deps), health: healthHandlers(health) },
  });
  let draining = false;
  const http = new HttpServer({
    config: config.http,
    logger: log,
    metrics,
    readiness: () => {
      const checks = { serving: health.status === 'SERVING', workers: workers.alive > 0, draining: !draining };
      return { ready: Object.values(checks).every(Boolean), checks };
    },
  });

  let stopping: Promise<void> | undefined;
  return {
    state,
    async start() {
      const httpPort = await http.start();
      const grpcPort = await grpcServer.start();
      health.set('SERVING');
      log.info(
        {
          event: 'SERVICE_STARTED',
          attributes: { 'grpc.port': grpcPort, 'http.port': httpPort, 'grpc.tls': grpcServer.tls, 'mediasoup.workers': workers.size },
        },
        `media service listening: gRPC ${grpcPort}, HTTP ${httpPort}`,
      );
      return { grpcPort, httpPort };
    },
    stop(reason: string) {
      stopping ??= (async () => {
        log.info({ event: 'SERVICE_STOPPING', attributes: { reason } }, 'stopping');
        draining = true;
        health.set('NOT_SERVING');
        await grpcServer.stop(config.grpc.shutdown_grace_seconds * 1000);
        workers.close();
        await http.stop();
        log.info({ event: 'SERVICE_STOPPED' }, 'stopped');
      })();
      return stopping;
    },
  };
}
