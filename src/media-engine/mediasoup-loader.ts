import createDebug from 'debug';
import { format } from 'node:util';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Logger } from '../logging/logger.ts';

type MediasoupModule = typeof import('mediasoup');

let loaded: Promise<MediasoupModule> | undefined;

/**
 * mediasoup 3.12 reads MEDIASOUP_WORKER_BIN once, when its module loads, and logs through
 * `debug` instances bound to the console. So the binary is chosen and the log hook is in
 * place before the first import; later calls share that module.
 */
export function loadMediasoup(opts: { workerBin: string; logger: Logger; debugLogs: boolean }): Promise<MediasoupModule> {
  if (!loaded) {
    if (opts.workerBin) {
      if (!existsSync(opts.workerBin)) throw new Error(`mediasoup worker binary not found: ${opts.workerBin}`);
      process.env.MEDIASOUP_WORKER_BIN = opts.workerBin;
    }
    routeDebugToLogger(opts.logger, opts.debugLogs);
    loaded = import('mediasoup');
  }
  return loaded;
}

/** Where mediasoup spawns its worker from when no binary is configured. */
export function defaultWorkerBin(): string {
  const require = createRequire(import.meta.url);
  return require.resolve('mediasoup/worker/out/Release/mediasoup-worker');
}

function routeDebugToLogger(logger: Logger, debugLogs: boolean): void {
  const log = logger.child({ component: 'mediasoup' });
  // `init` is debug's documented hook for environment-specific set-up of each instance.
  const hooks = createDebug as typeof createDebug & { init?: (instance: createDebug.Debugger) => void };
  const previousInit = hooks.init;
  // Lines arrive as printf-style args; the namespace says their severity.
  createDebug.formatArgs = function formatArgs(): void {};
  hooks.init = (instance: createDebug.Debugger): void => {
    previousInit?.(instance);
    const write = (...args: unknown[]): void => {
      const ns = instance.namespace;
      const message = format(...(args as [unknown, ...unknown[]]));
      const attributes = { 'mediasoup.namespace': ns };
      if (ns.includes(':ERROR')) log.error({ event: 'MEDIASOUP_ERROR', attributes }, message);
      else if (ns.includes(':WARN')) log.warn({ event: 'MEDIASOUP_WARN', attributes }, message);
      else log.debug({ event: 'MEDIASOUP_DEBUG', attributes }, message);
    };
    // mediasoup assigns console functions to `log` after creating each instance; keep ours.
    Object.defineProperty(instance, 'log', { get: () => write, set: () => {}, configurable: true });
  };
  createDebug.enable(debugLogs ? 'mediasoup*' : 'mediasoup:WARN*,mediasoup:ERROR*,mediasoup-worker*');
}
