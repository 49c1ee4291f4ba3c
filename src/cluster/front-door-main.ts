import type { Socket } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { LoadedConfig } from '../config/load.ts';
import { MediaError } from '../errors/media-error.ts';
import { loadDefinitions } from '../grpc/proto.ts';
import { createLogging, type Logger } from '../logging/logger.ts';
import { replaceLoopDelayGauges } from '../metrics/loop-delay.ts';
import { METRIC_PREFIX } from '../metrics/metrics.ts';
import { FrontDoor, type FrontDoorRouting, type Target } from './front-door.ts';
import { isToFrontDoor, type FromFrontDoor, type FrontDoorState, type ToFrontDoor, type WireTarget } from './front-door-messages.ts';
import { connectInstance, publicGrpcServer } from './public-grpc.ts';
import type { RouteKey } from './route.ts';

/**
 * How long a question to the supervisor may take before the request is answered UNAVAILABLE:
 * longer than anything the supervisor waits for itself (a leg to another instance: 5 s a half).
 */
const ASK_MS = 15_000;
/** How often it tells the supervisor it is alive (a silent one is killed as stuck). */
const ALIVE_MS = 500;

type Ask = Extract<FromFrontDoor, { id: number }> extends infer M ? (M extends { type: 'resolve' | 'run' | 'fallback' } ? Omit<M, 'id'> : never) : never;

/**
 * The routing of a front-door process: the supervisor keeps the directory and the placement,
 * so each request's target is asked of it once, over the IPC channel; the bytes of the stream
 * then go between the client's connection, held here, and the shard, without the supervisor.
 */
class RemoteRouting implements FrontDoorRouting {
  #state: FrontDoorState = { sockets: [], serving: false, instanceId: '' };
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout }>();
  readonly #send: (m: FromFrontDoor) => void;
  readonly #grpc: LoadedConfig['config']['grpc'];
  /** The supervisor's ref of an instance target with a fallback: released once the request settles. */
  readonly #refOf = new WeakMap<Target, number>();

  constructor(send: (m: FromFrontDoor) => void, grpc: LoadedConfig['config']['grpc']) {
    this.#send = send;
    this.#grpc = grpc;
  }

  set state(s: FrontDoorState) {
    this.#state = s;
  }

  reply(m: Extract<ToFrontDoor, { type: 'reply' }>): void {
    const p = this.#pending.get(m.id);
    if (!p) return;
    this.#pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) p.resolve(m.value);
    else p.reject(new MediaError(m.error.code, m.error.message));
  }

  /** The supervisor is gone: nothing it was asked will be answered. */
  failAll(): void {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new MediaError('unavailable', 'the media service is restarting; try again'));
      this.#pending.delete(id);
    }
  }

  #ask<T>(m: Ask): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        this.#send({ type: 'abandon', id });
        reject(new MediaError('unavailable', 'the media service did not route the request in time; try again'));
      }, ASK_MS);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#send({ ...m, id } as FromFrontDoor);
    });
  }

  #target(w: WireTarget): Target {
    if (w.kind === 'shard') return w;
    if (w.kind === 'answer') return { kind: 'answer', run: () => this.#ask<Record<string, unknown>>({ type: 'run', ref: w.ref }) };
    const ref = w.ref;
    if (ref === undefined) return { kind: 'instance', id: w.id, address: w.address };
    const t: Target = { kind: 'instance', id: w.id, address: w.address, fallback: () => this.#ask<WireTarget>({ type: 'fallback', ref }).then((next) => this.#target(next)) };
    this.#refOf.set(t, ref);
    return t;
  }

  async resolve(key: RouteKey, relayed: boolean): Promise<Target> {
    return this.#target(await this.#ask<WireTarget>({ type: 'resolve', key, relayed }));
  }

  socketOf(index: number): string | null {
    return this.#state.sockets[index] ?? null;
  }

  connectInstance(address: string): ReturnType<FrontDoorRouting['connectInstance']> {
    return connectInstance(this.#grpc, address);
  }

  settled(key: RouteKey, target: Target, code: number): void {
    if (target.kind === 'shard') this.#send({ type: 'settled', key, target: { kind: 'shard', index: target.index }, code });
    const ref = this.#refOf.get(target);
    if (target.kind === 'instance' && ref !== undefined) this.#send({ type: 'settled', key, target: { kind: 'instance', id: target.id, address: target.address, ref }, code });
  }

  serving(): boolean {
    return this.#state.serving;
  }

  instanceId(): string {
    return this.#state.instanceId;
  }
}

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
  const routing = new RemoteRouting(send, config.grpc);
  const door = new FrontDoor({ routing, logger: logging.process, definitions: loadDefinitions(), registry });
  const server = publicGrpcServer(config.grpc, log, { quiet: true });
  server.on('stream', (stream, headers) => door.handle(stream, headers));
  const sockets = new Set<Socket>();
  const onMessage = (m: unknown, handle: unknown): void => {
    if (!isToFrontDoor(m)) return;
    switch (m.type) {
      case 'connection': {
        const socket = handle as Socket | undefined;
        if (!socket) return;
        sockets.add(socket);
        socket.once('close', () => {
          sockets.delete(socket);
          send({ type: 'connection-closed' });
        });
        server.emit('connection', socket);
        socket.resume();
        return;
      }
      case 'state':
        routing.state = m.state;
        return;
      case 'drop-shard':
        door.dropShard(m.index);
        return;
      case 'reply':
        routing.reply(m);
        return;
      case 'metrics':
        void registry.metrics().then((text) => send({ type: 'metrics', id: m.id, text }));
    }
  };
  return {
    log,
    start: async () => {
      process.on('message', onMessage);
      // Without its supervisor this process has nothing to route by: its connections go, and so does it.
      process.once('disconnect', () => {
        routing.failAll();
        for (const s of sockets) s.destroy();
        process.exit(1);
      });
      send({ type: 'ready' });
      setInterval(() => send({ type: 'alive' }), ALIVE_MS).unref();
      log.info({ event: 'FRONT_DOOR_READY', attributes: { 'front_door.index': index } }, 'front door ready for client connections');
    },
    stop: async () => {
      process.off('message', onMessage);
      door.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
