import type { ChildProcess } from 'node:child_process';
import type { ConferenceSnapshot } from '../conference/conference-snapshot.ts';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Logger } from '../logging/logger.ts';
import { DoorLink } from './door-link.ts';
import type { FrontDoorRouting } from './front-door.ts';
import { isDoorMessage, type FrontDoorState, type ToFrontDoor } from './front-door-messages.ts';
import type { CallSnapshot } from '../sessions/call-snapshot.ts';
import { isShardMessage, SHARD_INDEX_ENV, SHARD_RUNTIME_DIR_ENV, type CallEntry, type ShardMessage, type SupervisorMessage } from './messages.ts';
import type { ShardLoad } from './placement.ts';
import { RestartingChild } from './restarting-child.ts';
import type { ShardSlice } from './shard-plan.ts';

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
  load: ShardLoad = { loopLagMs: 0, cpu: 0, sessions: 0 };
  #grpcSocket: string | null = null;
  #httpSocket: string | null = null;
  #servesConnections = false;
  /** The client connections the supervisor hands it, and its questions about their requests. */
  readonly #door: DoorLink;
  readonly #log: Logger;
  /** Its process, started again on the same slice whenever it dies; a ready shard reports twice a second, so one that stops is stuck. */
  readonly #proc: RestartingChild;

  constructor(opts: { slice: ShardSlice; env: Record<string, string>; runtimeDir: string; logger: Logger; hangTimeoutMs: number; routing: FrontDoorRouting }) {
    super();
    this.slice = opts.slice;
    this.#log = opts.logger;
    this.#door = new DoorLink({ routing: opts.routing, logger: opts.logger, shard: opts.slice.index });
    const s = opts.slice;
    this.#proc = new RestartingChild({
      env: {
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
      },
      logger: opts.logger,
      hangTimeoutMs: opts.hangTimeoutMs,
      label: { event: 'SHARD', attributes: { 'shard.index': s.index } },
      hooks: {
        message: (child, m) => this.#onMessage(child, m),
        exited: (code, signal, restartInMs) => this.#onExit(code, signal, restartInMs),
        hung: (silentMs) => {
          this.#log.error(
            { event: 'SHARD_HUNG', attributes: { 'shard.index': this.slice.index, 'shard.pid': this.pid ?? 0, 'shard.silent_ms': Math.round(silentMs) } },
            'a media shard stopped answering; killing it so it starts again and carries its calls on',
          );
          // Nothing more is placed on it or relayed to it.
          this.#grpcSocket = null;
          this.#httpSocket = null;
        },
      },
    });
  }

  /** Times it was started again after dying. */
  get restarts(): number {
    return this.#proc.restarts;
  }

  get index(): number {
    return this.slice.index;
  }

  get pid(): number | undefined {
    return this.#proc.pid;
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
    const child = this.#proc.child;
    return this.ready && this.#servesConnections && !this.#proc.stopping && child !== undefined && this.#door.take(child, socket, otherwise);
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
    this.#proc.send(m);
  }

  start(): void {
    this.#proc.start();
  }

  #onMessage(child: ChildProcess, m: unknown): void {
    if (isDoorMessage(m)) {
      this.#door.handle(child, m, () => this.#proc.child === child);
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
        this.#proc.watch();
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
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null, restartInMs: number | null): void {
    this.#grpcSocket = null;
    this.#httpSocket = null;
    this.#servesConnections = false;
    this.#door.exited();
    if (restartInMs === null) return;
    this.#log.error(
      { event: 'SHARD_DIED', attributes: { 'shard.index': this.slice.index, 'shard.exit_code': code, 'shard.signal': signal, 'shard.restart_in_ms': restartInMs } },
      'a media shard died; starting it again on the same slice',
    );
    this.emit('died', { code, signal });
  }

  send(m: SupervisorMessage): void {
    this.#proc.send(m);
  }

  /** Passes the signal on (a shard drains on the first, stops at once on a second). */
  signal(signal: NodeJS.Signals): void {
    this.#proc.signal(signal);
  }

  /** Resolves once the process has exited (at once when it is not running). */
  whenExited(): Promise<void> {
    return this.#proc.whenExited();
  }
}
