import { readFileSync } from 'node:fs';
import { flushCompileCache } from 'node:module';
import { join } from 'node:path';
import type { App } from './app.ts';
import { ConfigError, loadConfig, type LoadedConfig } from './config/load.ts';
import { SHARD_INDEX_ENV, SHARD_RUNTIME_DIR_ENV } from './cluster/messages.ts';
import { FRONT_DOOR_INDEX_ENV } from './cluster/front-door-messages.ts';
import type { ShardLink } from './cluster/shard-link.ts';
import { holdProcessWarnings, type Logger } from './logging/logger.ts';
import { compactHeap } from './util/idle-compaction.ts';

const MIN_NODE_MAJOR = 24;
/** After the supervisor said SERVICE_STARTED, as a single process compacts after start. */
const SUPERVISOR_COMPACTION_MS = 1000;

interface Runnable {
  log: Logger;
  stop(reason: string): Promise<void>;
}

async function main(): Promise<void> {
  const routeWarnings = holdProcessWarnings();
  const major = Number(process.versions.node.split('.')[0]);
  if (major < MIN_NODE_MAJOR) {
    process.stderr.write(`media service needs Node ${MIN_NODE_MAJOR} or later (this is ${process.version}); start it with \`npm start\`\n`);
    process.exit(1);
  }
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig({ env: process.env, argv: process.argv.slice(2), cwd: process.cwd() });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  const shardIndex = process.env[SHARD_INDEX_ENV];
  const frontDoorIndex = process.env[FRONT_DOOR_INDEX_ENV];
  let run: Runnable;
  let start: () => Promise<unknown>;
  // Each role loads only its own modules: a supervisor runs no media (measured: 4 MB of RSS
  // less), and a shard no front door.
  if (shardIndex !== undefined) {
    // One media shard, forked by the instance's supervisor.
    const [{ createApp }, { ShardBridges }, { ShardLink }, { DoorHost }, { isToFrontDoor }] = await Promise.all([
      import('./app.ts'),
      import('./cluster/shard-bridges.ts'),
      import('./cluster/shard-link.ts'),
      import('./cluster/door-host.ts'),
      import('./cluster/front-door-messages.ts'),
    ]);
    const index = Number(shardIndex);
    const dir = process.env[SHARD_RUNTIME_DIR_ENV] ?? '';
    const sockets = { grpcSocket: join(dir, `shard-${index}-${process.pid}.grpc`), httpSocket: join(dir, `shard-${index}-${process.pid}.http`) };
    // Without its supervisor nobody reaches this shard: it stops at once, it does not drain.
    let app: App | undefined;
    let door: InstanceType<typeof DoorHost> | undefined;
    process.on('disconnect', () => {
      door?.orphaned();
      if (!app) process.exit(1);
      void app.stop('supervisor gone');
      void app.stop('supervisor gone').finally(() => process.exit(1));
    });
    const link = ShardLink.toParent();
    const shard = { index, ...sockets, watcher: link, restore: () => link.restoreList(), lost: (snap: Parameters<ShardLink['lost']>[0], why: string) => link.lost(snap, why) };
    const shardApp = await createApp(loaded, { version: pkg.version, shard });
    app = shardApp;
    if (!process.connected) process.exit(1);
    const crossShard = new ShardBridges({ send: (m) => link.send(m), sessions: shardApp.state.sessions, bridges: shardApp.state.bridges, conferences: shardApp.state.conferences, networkBind: loaded.config.rtp.listen_address || '0.0.0.0' });
    link.listen((m) => crossShard.handle(m));
    // Client connections the supervisor hands this shard: its own calls' requests are served
    // here, the rest relayed to their shard.
    const serve = shardApp.serveGrpcStream;
    const host = new DoorHost({
      config: loaded.config,
      logger: shardApp.state.log,
      registry: shardApp.state.metrics.registry,
      send: (m) => link.send(m),
      ...(serve ? { local: { index, serve } } : {}),
    });
    door = host;
    process.on('message', (m: unknown, handle: unknown) => {
      if (isToFrontDoor(m)) host.handle(m, handle);
    });
    run = {
      log: shardApp.state.log,
      stop: (reason) => {
        host.drain();
        return shardApp.stop(reason).finally(() => Promise.all([link.close(), host.close()]));
      },
    };
    start = async () => {
      await shardApp.start();
      link.ready({ ...sockets, servesConnections: serve !== null }, shardApp.state.sessions, (s) => {
        const b = shardApp.state.bridges.of(s);
        const recording = shardApp.state.recordings.activeOn(s);
        return { ...(b && 'peerOf' in b ? { bridgedWith: b.peerOf(s).port } : {}), ...(recording ? { recording } : {}) };
      });
    };
  } else if (frontDoorIndex !== undefined) {
    // One front-door process, forked by the supervisor: it relays the connections it is handed.
    const { frontDoorProcess } = await import('./cluster/front-door-main.ts');
    const door = frontDoorProcess(loaded, pkg.version, Number(frontDoorIndex));
    run = door;
    start = () => door.start();
  } else if ((await import('./cluster/supervisor.ts')).shardCount(loaded.config) > 1 || loaded.config.cluster.redis_url) {
    // Several shards, or one of several instances: the supervisor is the front door.
    const { Supervisor } = await import('./cluster/supervisor.ts');
    const supervisor = new Supervisor(loaded, { version: pkg.version });
    run = supervisor;
    start = async () => {
      await supervisor.start();
      // Its shards are new and carry no call yet: the heap start-up grew is given back now
      // (measured: 91 -> 78 MB of RSS).
      setTimeout(() => compactHeap(supervisor.log, 'start'), SUPERVISOR_COMPACTION_MS).unref();
    };
    process.on('exit', () => supervisor.killShards());
  } else {
    const { createApp } = await import('./app.ts');
    const app = await createApp(loaded, { version: pkg.version });
    run = { log: app.state.log, stop: (reason) => app.stop(reason) };
    start = () => app.start();
  }
  const log = run.log;
  routeWarnings(log);

  process.on('unhandledRejection', (error) => {
    log.error({ event: 'UNHANDLED_REJECTION', error }, 'unhandled promise rejection');
  });
  process.on('uncaughtException', (error) => {
    log.fatal({ event: 'UNCAUGHT_EXCEPTION', error }, 'uncaught exception; exiting');
    process.exit(1);
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    run.stop(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ event: 'SHUTDOWN_FAILED', error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  await start();
  // Node writes the compile cache at a clean exit only; a process that is killed would leave
  // the next one to compile (and strip the types of) everything again.
  flushCompileCache();
}

/** The process: config, then a supervisor, a shard or the one app, until a signal. Called by src/main.js. */
export function runService(): void {
  main().catch((err: unknown) => {
    process.stderr.write(`media service failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
