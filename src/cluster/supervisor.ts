import { status as Status } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { LoadedConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createEventPublisher } from '../events/index.ts';
import { genericEvent, type EventPublisher } from '../events/types.ts';
import { loadDefinitions } from '../grpc/proto.ts';
import { createLogging, type Logger, type Logging } from '../logging/logger.ts';
import { replaceLoopDelayGauges } from '../metrics/loop-delay.ts';
import { METRIC_PREFIX } from '../metrics/metrics.ts';
import { CallDirectory } from './call-directory.ts';
import type { InstanceBus } from './instance-bus.ts';
import { Legs, type CallAt } from './legs.ts';
import type { ConferenceSnapshot } from '../conference/conference-snapshot.ts';
import { remoteHalves, serveRemoteHalves } from './remote-halves.ts';
import { RequestRouter } from './request-router.ts';
import type { CallEntry } from './messages.ts';
import { FrontDoor, type FrontDoorRouting } from './front-door.ts';
import { FrontDoorProcess } from './front-door-process.ts';
import type { FrontDoorState } from './front-door-messages.ts';
import { connectInstance, listenOn, publicGrpcServer, type PublicGrpcServer } from './public-grpc.ts';
import type { InstanceRegistry } from './instance-registry.ts';
import { HttpFront, type HttpFrontShards, type HttpRoute } from './http-front.ts';
import { shardOfRoom } from './route.ts';
import { ShardProcess } from './shard-process.ts';
import { frontDoorCount, planShards, type ShardSlice } from './shard-plan.ts';

/** How long the calls of a dead shard wait for it to come back before they are reported lost. */
const RESTORE_DEADLINE_MS = 15_000;

/** How many shards a configuration asks for on this machine. */
export function shardCount(config: Readonly<Config>): number {
  return config.cluster.shards === 'auto' ? availableParallelism() : Number(config.cluster.shards);
}

/**
 * The instance when it runs several media shards: it starts and restarts them, keeps the
 * directory of which shard carries which call, places new calls by load, and is the one
 * gRPC and HTTP address in front of them.
 */
export class Supervisor {
  readonly #config: Readonly<Config>;
  readonly #logging: Logging;
  /** Lines of the supervisor itself; its parts add their own component. */
  readonly #log: Logger;
  readonly #version: string;
  readonly #slices: ShardSlice[];
  readonly #shards: ShardProcess[] = [];
  readonly #directory = new CallDirectory();
  readonly #legs = new Legs({
    shards: this.#shards,
    host: () => this.#linkHost,
    remote: () => (this.#bus ? remoteHalves(this.#bus) : undefined),
    live: (c) => ('shard' in c ? this.#directory.hasPort(c.port) : c.port ? this.#instances?.instanceForPort(c.port)?.id === c.instance : this.#instances?.instance(c.instance) !== undefined),
    seatNow: (home, seat) => {
      const p = this.#conferencesOf(home).get(seat.conferenceId)?.phones.find((x) => x.participantId === seat.participantId);
      return p ? { ...seat, muted: p.muted, deaf: p.deaf, gainDb: p.gainDb } : seat;
    },
  });
  /** Each shard's conferences as it last told them: made again by its next process. */
  readonly #conferences = new Map<number, Map<string, ConferenceSnapshot>>();
  readonly #router: RequestRouter;
  readonly #registry = new Registry();
  #runtimeDir = '';
  #events: EventPublisher | undefined;
  #frontDoor: FrontDoor | undefined;
  /** Processes that relay client connections handed to them; none: the supervisor's own front door relays. */
  readonly #frontDoors: FrontDoorProcess[] = [];
  #grpc: PublicGrpcServer | undefined;
  /** With front-door processes, the listener that hands each accepted connection to one of them. */
  #acceptor: TcpServer | undefined;
  #http: HttpFront | undefined;
  #draining = false;
  #instances: InstanceRegistry | undefined;
  #bus: InstanceBus | undefined;
  /** The address other instances' halves of legs send to (an IP: their frames are checked against it). */
  #linkHost = '127.0.0.1';
  #instanceId = '';
  #stopping: Promise<void> | undefined;

  constructor(loaded: LoadedConfig, opts: { version: string }) {
    this.#config = loaded.config;
    this.#version = opts.version;
    this.#logging = createLogging({ config: loaded.config, version: opts.version });
    this.#log = this.#logging.process.child({ component: 'supervisor' });
    this.#slices = planShards(loaded.config, shardCount(loaded.config));
    this.#router = new RequestRouter({
      config: loaded.config,
      slices: this.#slices,
      shards: this.#shards,
      directory: this.#directory,
      legs: this.#legs,
      instances: () => this.#instances,
      draining: () => this.#draining,
    });
    collectDefaultMetrics({ register: this.#registry, prefix: METRIC_PREFIX, labels: { shard: 'supervisor' } });
    replaceLoopDelayGauges(this.#registry, METRIC_PREFIX, { shard: 'supervisor' });
  }

  get log(): Logger {
    return this.#log;
  }

  async start(): Promise<{ grpcPort: number; httpPort: number }> {
    const config = this.#config;
    this.#runtimeDir = await mkdtemp(join(tmpdir(), 'sentiric-media-'));
    this.#events = await createEventPublisher({ config: config.events, logger: this.#logging.process, registry: this.#registry });
    let secret = config.signaling.token_secret;
    if (!secret && config.cluster.redis_url && config.service.env === 'production') {
      throw new Error('SIGNALING_TOKEN_SECRET must be set when instances share a registry (REDIS_URL) in production: a room token must verify on every instance');
    }
    if (!secret) {
      secret = randomBytes(32).toString('base64url');
      this.#log.warn({ event: 'SIGNALING_SECRET_EPHEMERAL' }, 'SIGNALING_TOKEN_SECRET is not set: room tokens are signed with a random secret shared by this instance\'s shards and die with it');
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    Object.assign(env, { SIGNALING_TOKEN_SECRET: secret, MEDIA_SHARDS: '1' });
    this.#metrics();
    const routing = this.#routing();
    for (const slice of this.#slices) this.#shards.push(this.#watch(new ShardProcess({ slice, env, runtimeDir: this.#runtimeDir, logger: this.#log, hangTimeoutMs: config.cluster.hang_timeout_seconds * 1000, routing })));
    for (let i = 0; i < frontDoorCount(config); i++) {
      this.#frontDoors.push(new FrontDoorProcess({ index: i, env, routing, state: () => this.#frontDoorState(), logger: this.#log, hangTimeoutMs: config.cluster.hang_timeout_seconds * 1000 }));
    }
    const ready = Promise.all([...this.#shards, ...this.#frontDoors].map((s) => new Promise<void>((r) => s.once('ready', () => r()))));
    for (const s of this.#shards) s.start();
    for (const d of this.#frontDoors) d.start();
    await ready;

    // The supervisor's own front door: the relay for a connection that arrives while no shard
    // or front-door process takes connections (starting, restarting, draining).
    this.#frontDoor = new FrontDoor({ routing, logger: this.#logging.process, definitions: loadDefinitions(), registry: this.#registry });
    this.#grpc = publicGrpcServer(config.grpc, this.#log);
    this.#grpc.on('stream', (stream, headers) => this.#frontDoor!.handle(stream, headers));
    this.#http = new HttpFront({ config: config.http, shards: this.#httpShards(), registry: this.#registry, logger: this.#logging.process });
    const httpPort = await this.#http.start();
    // Accepted here, read there: nothing of a connection is read before it is handed over.
    this.#acceptor = createTcpServer({ pauseOnConnect: true }, (socket) => this.#handOver(socket));
    const grpcPort = await listenOn(this.#acceptor, config.grpc.listen_address, config.grpc.port);
    this.#instanceId = config.cluster.instance_id || `${hostname()}-${grpcPort}`;
    this.#updateFrontDoors();
    if (config.cluster.redis_url) await this.#join(grpcPort, httpPort);
    this.#log.info(
      {
        event: 'SERVICE_STARTED',
        attributes: {
          'grpc.port': grpcPort,
          'http.port': httpPort,
          'grpc.tls': config.grpc.cert_path !== '',
          'media.shards': this.#shards.length,
          'media.front_doors': this.#frontDoors.length,
          'service.version': this.#version,
        },
      },
      `media service listening: gRPC ${grpcPort}, HTTP ${httpPort}, ${this.#shards.length} media shards`,
    );
    return { grpcPort, httpPort };
  }

  /** Drains every shard (each lets its live calls finish for the grace), then stops. A second call cuts the drain. */
  stop(reason: string): Promise<void> {
    if (this.#stopping) {
      for (const s of this.#shards) s.signal('SIGTERM');
      return this.#stopping;
    }
    this.#stopping = (async () => {
      this.#draining = true;
      this.#updateFrontDoors();
      this.#log.info({ event: 'SERVICE_STOPPING', attributes: { reason, 'calls.live': this.#directory.size } }, 'stopping: no new calls, live calls may finish');
      for (const s of this.#shards) s.signal('SIGTERM');
      await Promise.all(this.#shards.map((s) => s.whenExited()));
      // Not waited for: a listener that handed sockets to other processes waits to hear they
      // closed from processes that are about to exit.
      this.#acceptor?.close();
      for (const d of this.#frontDoors) d.signal('SIGTERM');
      await Promise.all(this.#frontDoors.map((d) => d.whenExited()));
      this.#frontDoor?.close();
      this.#legs.close();
      await new Promise<void>((r) => (this.#grpc ? this.#grpc.close(() => r()) : r()));
      await this.#http?.stop();
      this.#bus?.close();
      await this.#instances?.close();
      await this.#events?.close();
      rmSync(this.#runtimeDir, { recursive: true, force: true });
      this.#log.info({ event: 'SERVICE_STOPPED' }, 'stopped');
    })();
    return this.#stopping;
  }

  /** The supervisor itself died: shards must not outlive it holding the ports. */
  killShards(): void {
    for (const s of this.#shards) s.signal('SIGKILL');
    for (const d of this.#frontDoors) d.signal('SIGKILL');
    if (this.#runtimeDir) rmSync(this.#runtimeDir, { recursive: true, force: true });
  }

  #watch(s: ShardProcess): ShardProcess {
    let deadline: NodeJS.Timeout | undefined;
    // The conferences handed to the shard: their phones of other processes are joined again once it is ready.
    let restoring: ConferenceSnapshot[] = [];
    s.on('hello', () => {
      restoring = [...this.#conferencesOf(s.index).values()];
      s.send({ type: 'restore', calls: this.#directory.waiting(s.index), conferences: restoring });
    });
    s.on('conference-state', (snap) => this.#conferencesOf(s.index).set(snap.create.id, snap));
    s.on('call-opened', (entry, snapshot) => {
      this.#directory.opened(s.index, entry, snapshot);
      this.#instances?.callOpened(entry);
    });
    s.on('call-closed', ({ callId }) => {
      this.#directory.closed(s.index, callId);
      this.#instances?.callClosed(callId);
    });
    s.on('snapshots', (snaps) => this.#directory.refresh(s.index, snaps));
    s.on('bridge', (m) => this.#legs.handle(s.index, m));
    s.on('conference-ended', (id) => {
      this.#conferencesOf(s.index).delete(id);
      this.#instances?.conferenceEnded(id);
    });
    s.on('call-lost', ({ callId, port, reason }) => {
      const entry = this.#directory.entryOf(callId);
      this.#directory.closed(s.index, callId);
      if (entry) this.#lost([entry], s.index, reason);
      else this.#log.warn({ event: 'SESSION_LOST', attributes: { 'rtp.port': port, 'shard.index': s.index } }, 'a call could not be carried on');
    });
    s.on('ready', () => {
      clearTimeout(deadline);
      this.#dropShard(s.index);
      this.#lost(this.#directory.unconfirmed(s.index), s.index, 'not carried on by the restarted shard');
      void this.#legs.shardReady(s.index);
      void this.#reseat(s.index, restoring.splice(0));
      this.#log.info({ event: 'SHARD_READY', attributes: { 'shard.index': s.index, 'shard.pid': s.pid ?? 0, 'shard.restarts': s.restarts } }, 'media shard ready');
    });
    s.on('died', () => {
      this.#dropShard(s.index);
      this.#legs.shardDied(s.index);
      const waiting = this.#directory.suspend(s.index);
      this.#log.warn({ event: 'SHARD_CALLS_WAITING', attributes: { 'shard.index': s.index, 'calls.waiting': waiting.length } }, 'calls of the dead shard wait for its restart');
      clearTimeout(deadline);
      // A shard that cannot come back soon: its calls are gone, the platform must hear it.
      deadline = setTimeout(() => {
        this.#lost(this.#directory.unconfirmed(s.index), s.index, 'the shard did not come back');
        for (const id of this.#conferencesOf(s.index).keys()) this.#instances?.conferenceEnded(id);
        this.#conferencesOf(s.index).clear();
      }, RESTORE_DEADLINE_MS);
      deadline.unref();
    });
    return s;
  }

  /**
   * A client connection goes to the front-door process holding the fewest or, with none
   * configured, to the shard holding the fewest: that shard serves its own calls' requests
   * on it directly. The supervisor relays it itself when none takes it.
   */
  #handOver(socket: Socket): void {
    const relayHere = (s: Socket): void => {
      this.#grpc!.emit('connection', s);
      s.resume();
    };
    const doors: readonly { handed: number; take(s: Socket, otherwise: (s: Socket) => void): boolean }[] = this.#frontDoors.length > 0 ? this.#frontDoors : this.#shards;
    // Fewest first; one that cannot take it now (starting, draining, stalled) passes it on.
    const byLoad = [...doors].sort((a, b) => a.handed - b.handed);
    for (const d of byLoad) if (d.take(socket, relayHere)) return;
    relayHere(socket);
  }

  /** A shard restarted or died: doors forget their connection to it and learn its new socket. */
  #dropShard(index: number): void {
    this.#frontDoor?.dropShard(index);
    for (const d of this.#frontDoors) d.dropShard(index);
    for (const s of this.#shards) if (s.index !== index) s.dropShard(index);
    this.#updateFrontDoors();
  }

  #frontDoorState(): FrontDoorState {
    return { sockets: this.#shards.map((s) => s.grpcSocket), serving: !this.#draining && this.#shards.some((s) => s.ready), instanceId: this.#instanceId };
  }

  #updateFrontDoors(): void {
    for (const d of this.#frontDoors) d.update();
    const state = this.#frontDoorState();
    for (const s of this.#shards) s.update(state);
  }

  #conferencesOf(shard: number): Map<string, ConferenceSnapshot> {
    let m = this.#conferences.get(shard);
    if (!m) this.#conferences.set(shard, (m = new Map()));
    return m;
  }

  /** A restarted shard made its conferences again: their phones that other processes carry are joined again. */
  async #reseat(home: number, conferences: readonly ConferenceSnapshot[]): Promise<void> {
    for (const snap of conferences) {
      for (const p of snap.phones) {
        if (!p.remote) continue;
        const call = await this.#callOf(p.callId);
        const seat = { conferenceId: snap.create.id, participantId: p.participantId, callId: p.callId, muted: p.muted, deaf: p.deaf, gainDb: p.gainDb };
        if (!call) continue;
        this.#legs.joinConference(call, home, seat).catch((error: unknown) =>
          this.#log.warn({ event: 'CONFERENCE_RESEAT_FAILED', error, attributes: { 'conference.id': seat.conferenceId, 'conference.participant': seat.participantId } }, 'a phone of a restored conference could not join again'),
        );
      }
    }
  }

  /** Where a call is: one of this instance's shards, or another instance (by id). */
  async #callOf(callId: string): Promise<CallAt | null> {
    const shard = this.#directory.ownerOf(callId);
    const entry = this.#directory.entryOf(callId);
    if (shard !== undefined && entry) return { shard, port: entry.port };
    const other = await this.#instances?.ownerOf(callId);
    return other ? { instance: other.id, port: 0, callId } : null;
  }

  #lost(entries: readonly CallEntry[], shard: number | string, reason: string): void {
    for (const c of entries) {
      this.#instances?.callClosed(c.callId);
      this.#logging
        .forContext({ trace_id: c.traceId, call_id: c.callId, tenant_id: c.tenantId })
        .error({ event: 'SESSION_LOST', component: 'supervisor', attributes: { 'rtp.port': c.port, ...(typeof shard === 'number' ? { 'shard.index': shard } : { 'instance.id': shard }), 'lost.reason': reason } }, 'a call died with its media shard');
      void this.#events?.publish(genericEvent('call.media.session.lost', { traceId: c.traceId, tenantId: c.tenantId, payload: { callId: c.callId, port: c.port, reason } }));
    }
  }

  async #join(grpcPort: number, httpPort: number): Promise<void> {
    const config = this.#config;
    const host = config.cluster.advertise_address || config.rtp.advertised_ip || '127.0.0.1';
    // The Redis client (some 8 MB) is loaded only by an instance that shares a registry.
    const { InstanceRegistry } = await import('./instance-registry.ts');
    this.#instances = await InstanceRegistry.connect(
      config.cluster.redis_url,
      { id: this.#instanceId, grpc: `${host}:${grpcPort}`, http: `${host}:${httpPort}`, rtpMin: config.rtp.port_min, rtpMax: config.rtp.port_max },
      config.cluster.instance_ttl_seconds * 1000,
      this.#logging.process,
    );
    // Halves of legs with other machines are reached at this address: a name is looked up once.
    this.#linkHost = (await lookup(host)).address;
    this.#bus = await this.#instances.openBus();
    serveRemoteHalves(this.#bus, {
      legs: this.#legs,
      slices: this.#slices,
      directory: this.#directory,
    });
    await this.#instances.register({
      calls: () => this.#directory.size,
      onLost: (id, calls) => this.#lost(calls, id, 'its media instance stopped answering'),
      onGone: (id) => this.#legs.instanceLost(id),
    });
  }

  #routing(): FrontDoorRouting {
    const grpc = this.#config.grpc;
    return {
      resolve: (key, relayed) => this.#router.resolve(key, relayed),
      socketOf: (i) => this.#shards[i]?.grpcSocket ?? null,
      connectInstance: (address) => connectInstance(grpc, address),
      settled: (key, target, code) => {
        // A conference this instance claimed and its shard did not make: its id is free again.
        if (key.kind === 'conference' && key.create && target.kind === 'shard' && code !== 0 && code !== Status.ALREADY_EXISTS) this.#instances?.conferenceEnded(key.conferenceId);
        if (key.kind !== 'call' || !key.allocate || target.kind !== 'shard') return;
        this.#directory.settled(key.callId, target.index, code === 0);
        if (code !== 0) this.#instances?.unclaim(key.callId);
      },
      serving: () => !this.#draining && this.#shards.some((s) => s.ready),
      instanceId: () => this.#instanceId,
    };
  }

  #httpShards(): HttpFrontShards {
    return {
      list: () => this.#shards.map((s) => ({ index: s.index, httpSocket: s.httpSocket })),
      routeRoom: async (room, relayed) => {
        const local = (i: number | undefined): HttpRoute | null => {
          const socketPath = i === undefined ? null : this.#shards[i]?.httpSocket;
          return socketPath ? { socketPath } : null;
        };
        if (!room) return local(this.#shards.find((s) => s.ready)?.index);
        const owner = this.#directory.ownerOf(room);
        if (owner !== undefined) return local(owner);
        if (this.#instances && !relayed) {
          const other = await this.#instances.roomOwner(room);
          if (other) {
            const at = other.http.lastIndexOf(':');
            return { host: other.http.slice(0, at), port: Number(other.http.slice(at + 1)), instance: other.id };
          }
        }
        return local(shardOfRoom(room, this.#shards.length));
      },
      describe: (i) => {
        const s = this.#shards[i]!;
        return { ready: s.ready, pid: s.pid ?? null, restarts: s.restarts, load: s.load, connections: s.connections, rtp: [s.slice.rtpMin, s.slice.rtpMax], grpcSocket: s.grpcSocket };
      },
      frontDoors: () =>
        this.#frontDoors.map((d) => ({
          index: d.index,
          metrics: () => d.metrics(),
          describe: () => ({ ready: d.ready, pid: d.pid ?? null, restarts: d.restarts, connections: d.connections }),
        })),
      readiness: () => {
        const checks: Record<string, boolean> = { draining: !this.#draining };
        for (const s of this.#shards) checks[`shard_${s.index}`] = s.ready;
        return { ready: !this.#draining && this.#shards.some((s) => s.ready), checks };
      },
    };
  }

  #metrics(): void {
    const registers = [this.#registry];
    const shards = this.#shards;
    new Gauge({
      name: `${METRIC_PREFIX}shard_event_loop_delay_seconds`,
      help: 'Event-loop delay p95 of each media shard over the last second, as it reported it',
      labelNames: ['shard'] as const,
      registers,
      collect() {
        for (const s of shards) this.set({ shard: String(s.index) }, s.load.loopLagMs / 1000);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}shard_cpu_ratio`,
      help: 'CPU used by each media shard (1 = one core), as it reported it',
      labelNames: ['shard'] as const,
      registers,
      collect() {
        for (const s of shards) this.set({ shard: String(s.index) }, s.load.cpu);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}shard_ready`,
      help: 'Whether each media shard is ready (1) or starting (0)',
      labelNames: ['shard'] as const,
      registers,
      collect() {
        for (const s of shards) this.set({ shard: String(s.index) }, s.ready ? 1 : 0);
      },
    });
    const doors = this.#frontDoors;
    new Counter({
      name: `${METRIC_PREFIX}front_door_restarts_total`,
      help: 'Front-door processes started again after they died (their client connections were cut)',
      labelNames: ['front_door'] as const,
      registers,
      collect() {
        this.reset();
        for (const d of doors) this.inc({ front_door: String(d.index) }, d.restarts);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}shard_restarts_total`,
      help: 'Media shards started again after they died',
      labelNames: ['shard'] as const,
      registers,
      collect() {
        this.reset();
        for (const s of shards) this.inc({ shard: String(s.index) }, s.restarts);
      },
    });
  }
}
