import { collectDefaultMetrics, Registry } from 'prom-client';
import type { LoadedConfig } from '../config/load.ts';
import { createLogging, type Logger } from '../logging/logger.ts';
import { replaceLoopDelayGauges } from '../metrics/loop-delay.ts';
import { METRIC_PREFIX } from '../metrics/metrics.ts';
import { DoorHost } from './door-host.ts';
import { isToFrontDoor, type FromFrontDoor } from './front-door-messages.ts';

/** How often it tells the supervisor it is alive (a silent one is killed as stuck). */
const ALIVE_MS = 500;

/**
 * One front-door process: it serves the client connections the supervisor hands it (TLS
 * included) and relays each request to its call's shard. It listens on nothing itself.
 */
export function frontDoorProcess(loaded: LoadedConfig, version: string, index: number): { log: Logger; start(): Promise<void>; stop(reason: string): Promise<void> } {
  const config = loaded.config;
  const logging = createLogging({ config, version, frontDoor: index });
  const log = logging.process.child({ component: 'front-door-process' });
  const registry = new Registry();
  registry.setDefaultLabels({ front_door: String(index) });
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  replaceLoopDelayGauges(registry, METRIC_PREFIX, {});
  const send = (m: FromFrontDoor): void => {
    if (process.connected) process.send!(m);
  };
  const host = new DoorHost({ config, logger: logging.process, registry, send });
  const onMessage = (m: unknown, handle: unknown): void => {
    if (!isToFrontDoor(m) || host.handle(m, handle)) return;
    if (m.type === 'metrics') void registry.metrics().then((text) => send({ type: 'metrics', id: m.id, text }));
  };
  return {
    log,
    start: async () => {
      process.on('message', onMessage);
      // Without its supervisor this process has nothing to route by: its connections go, and so does it.
      process.once('disconnect', () => {
        host.orphaned();
        process.exit(1);
      });
      send({ type: 'ready' });
      setInterval(() => send({ type: 'alive' }), ALIVE_MS).unref();
      log.info({ event: 'FRONT_DOOR_READY', attributes: { 'front_door.index': index } }, 'front door ready for client connections');
    },
    stop: async () => {
      process.off('message', onMessage);
      await host.close();
    },
  };
}
