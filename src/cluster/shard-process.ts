import { fork, type ChildProcess } from 'node:child_process';
import type { ConferenceSnapshot } from '../conference/conference-snapshot.ts';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logging/logger.ts';
import { DoorLink } from './door-link.ts';
import type { FrontDoorRouting } from './front-door.ts';
import { isDoorMessage, type FrontDoorState, type ToFrontDoor } from './front-door-messages.ts';
import type { CallSnapshot } from '../sessions/call-snapshot.ts';
import { isShardMessage, SHARD_INDEX_ENV, SHARD_RUNTIME_DIR_ENV, type CallEntry, type ShardMessage, type SupervisorMessage } from './messages.ts';
import type { ShardLoad } from './placement.ts';
import type { ShardSlice } from './shard-plan.ts';
import { SilenceWatch } from './silence-watch.ts';

const ENTRY = fileURLToPath(new URL('../main.js', import.meta.url));
/** The first restart is at once: the calls of the slice wait for it. */
const FIRST_RESTART_MS = 0;
const LONGEST_RESTART_MS = 10_000;
/** A shard that stayed up this long restarts at once after its next crash; one dying sooner is in a crash loop and waits longer each time. */
const STABLE_MS = 2_000;

export interface ShardProcessEvents {
  /** The process started and asks which calls to carry on. */
  hello: [];
  ready: [];
  snapshots: [CallSnapshot[]];
  'call-opened': [CallEntry, CallSnapshot];
  'call-lost': [{ callId: string; port: number; reason: string }];
  /** A message about a leg between two processes (a bridge, a conference seat). */
  bridge: [Extract<ShardMessage, { type: 'bridge-opened' | 'bridge-refused' | 'bridge-closed' }>];
  'call-closed': [{ callId: string; port: number }];
  'conference-ended': [string];
  'conference-state': [ConferenceSnapshot];
  /** The process ended while it was meant to run; it is being started again. */
  died: [{ code: number | null; signal: NodeJS.Signals | null }];
}

/**
 * One media shard's process: started with its slice in its environment, watched, and
 * started again on the same slice when it dies (with a growing pause if it keeps dying).
 */
export class ShardProcess extends EventEmitter<ShardProcessEvents> {
  readonly slice: ShardSlice;
  restarts = 0;
  load: ShardLoad = { loopLagMs: 0, cpu: 0, sessions: 0 };
  #child: ChildProcess | undefined;
  #grpcSocket: string | null = null;
  #httpSocket: string | null = null;
  #servesConnections = false;
  /** The client connections the supervisor hands it, and its questions about their requests. */
  readonly #door: DoorLink;
  #stopping = false;
  #startedAt = 0;
  #delay = FIRST_RESTART_MS;
  #restartTimer: NodeJS.Timeout | undefined;
  readonly #env: Record<string, string>;
  readonly #log: Logger;
  #exited: Promise<void> = Promise.resolve();
  /** A ready shard reports its load twice a second: one that stops is stuck, and is killed so it restarts. */
  readonly #watch: SilenceWatch;

  constructor(opts: { slice: ShardSlice; env: Record<string, string>; runtimeDir: string; logger: Logger; hangTimeoutMs: number; routing: FrontDoorRouting }) {
    super();
    this.slice = opts.slice;
    this.#log = opts.logger;
    this.#door = new DoorLink({ routing: opts.routing, logger: opts.logger, shard: opts.slice.index });
    this.#watch = new SilenceWatch({
      timeoutMs: opts.hangTimeoutMs,
      onSilent: (silentMs) => {
        this.#log.error(
          { event: 'SHARD_HUNG', attributes: { 'shard.index': this.slice.index, 'shard.pid': this.#child?.pid ?? 0, 'shard.silent_ms': Math.round(silentMs) } },
          'a media shard stopped answering; killing it so it starts again and carries its calls on',
        );
        // Nothing more is placed on it or relayed to it.
        this.#grpcSocket = null;
        this.#httpSocket = null;
        this.#child?.kill('SIGKILL');
      },
    });
    const s = opts.slice;
    this.#env = {
      ...opts.env,
      RTP_SERVICE_PORT_MIN: String(s.rtpMin),
      RTP_SERVICE_PORT_MAX: String(s.rtpMax),
      MEDIASOUP_RTC_MIN_PORT: String(s.rtcMin),
      MEDIASOUP_RTC_MAX_PORT: String(s.rtcMax),
      WEBRTC_PORT: String(s.webrtcPort),
      MEDIASOUP_NUM_WORKERS: String(s.workers),
      RECORDING_SPOOL_DIR: s.spoolDir,
      [SHARD_INDEX_ENV]: String(s.index),
      [SHARD_RUNTIME_DIR_ENV]: opts.runtimeDir,
    };
  }

  get index(): number {
    return this.slice.index;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The private gRPC socket while the shard is ready. */
  get grpcSocket(): string | null {
    return this.#grpcSocket;
  }

  get httpSocket(): string | null {
    return this.#httpSocket;
  }

  get ready(): boolean {
    return this.#grpcSocket !== null;
  }

  /**
   * Hands it an accepted client connection: it serves its own calls' requests on it and relays
   * the rest. False when it takes none now (starting, draining, or stuck taking the last).
   */
  take(socket: Socket, otherwise: (socket: Socket) => void): boolean {
    const child = this.#child;
    return this.ready && this.#servesConnections && !this.#stopping && child !== undefined && this.#door.take(child, socket, otherwise);
  }

  /** Client connections it holds or is being handed: what the supervisor balances by. */
  get handed(): number {
    return this.#door.load;
  }

  /** Client connections it holds now. */
  get connections(): number {
    return this.#door.connections;
  }

  /** Tells it what its connections' requests need: the shards' sockets, whether the instance serves. */
  update(state: FrontDoorState): void {
    if (this.#servesConnections) this.#send({ type: 'state', state });
  }

  dropShard(index: number): void {
    if (this.#servesConnections) this.#send({ type: 'drop-shard', index });
  }

  #send(m: ToFrontDoor): void {
    if (this.#child?.connected) this.#child.send(m);
  }

  start(): void {
    this.#startedAt = Date.now();
    // Its own process group: a terminal's Ctrl-C reaches the supervisor, which drains the shards.
    const child = fork(ENTRY, process.argv.slice(2), { env: this.#env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', detached: true });
    this.#child = child;
    // A send to a child that just died (its channel not yet seen closed) fails here, not in a throw.
    child.on('error', (error) => this.#log.warn({ event: 'SHARD_CHANNEL_FAILED', error, attributes: { 'shard.index': this.slice.index } }, 'a message to a media shard could not be sent'));
    child.on('message', (m) => {
      this.#watch.beat();
      if (isDoorMessage(m)) {
        this.#door.handle(child, m, () => this.#child === child);
        return;
      }
      if (!isShardMessage(m)) return;
      switch (m.type) {
        case 'hello':
          this.emit('hello');
          return;
        case 'snapshots':
          this.emit('snapshots', m.calls);
          return;
        case 'call-lost':
          this.emit('call-lost', { callId: m.callId, port: m.port, reason: m.reason });
          return;
        case 'bridge-opened':
        case 'bridge-refused':
        case 'bridge-closed':
          this.emit('bridge', m);
          return;
        case 'ready':
          this.#grpcSocket = m.grpcSocket;
          this.#httpSocket = m.httpSocket;
          this.#servesConnections = m.servesConnections;
          if (!this.#stopping) this.#watch.arm();
          this.emit('ready');
          return;
        case 'load':
          this.load = m.load;
          return;
        case 'call-opened':
          this.emit('call-opened', m.call, m.snapshot);
          return;
        case 'call-closed':
          this.emit('call-closed', { callId: m.callId, port: m.port });
          return;
        case 'conference-ended':
          this.emit('conference-ended', m.conferenceId);
          return;
        case 'conference-state':
          this.emit('conference-state', m.conference);
      }
    });
    this.#exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.#watch.disarm();
        this.#grpcSocket = null;
        this.#httpSocket = null;
        this.#servesConnections = false;
        this.#child = undefined;
        this.#door.exited();
        resolve();
        if (this.#stopping) return;
        this.restarts++;
        if (Date.now() - this.#startedAt > STABLE_MS) this.#delay = FIRST_RESTART_MS;
        this.#log.error(
          { event: 'SHARD_DIED', attributes: { 'shard.index': this.slice.index, 'shard.exit_code': code, 'shard.signal': signal, 'shard.restart_in_ms': this.#delay } },
          'a media shard died; starting it again on the same slice',
        );
        this.emit('died', { code, signal });
        this.#restartTimer = setTimeout(() => this.start(), this.#delay);
        this.#delay = Math.min(LONGEST_RESTART_MS, Math.max(250, this.#delay * 2));
      });
    });
  }

  send(m: SupervisorMessage): void {
    if (this.#child?.connected) this.#child.send(m);
  }

  /** Passes the signal on (a shard drains on the first, stops at once on a second). */
  signal(signal: NodeJS.Signals): void {
    this.#stopping = true;
    // A draining shard stops reporting: it is not stuck.
    this.#watch.disarm();
    clearTimeout(this.#restartTimer);
    this.#child?.kill(signal);
  }

  /** Resolves once the process has exited (at once when it is not running). */
  whenExited(): Promise<void> {
    return this.#exited;
  }
}
