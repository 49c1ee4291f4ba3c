import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { status as Status } from '@grpc/grpc-js';
import { MediaError } from '../errors/media-error.ts';
import type { Logger } from '../logging/logger.ts';
import type { FrontDoorRouting, Target } from './front-door.ts';
import { SilenceWatch } from './silence-watch.ts';
import { FRONT_DOOR_INDEX_ENV, isFromFrontDoor, type FromFrontDoor, type FrontDoorState, type ToFrontDoor, type WireTarget } from './front-door-messages.ts';

const ENTRY = fileURLToPath(new URL('../main.js', import.meta.url));
const LONGEST_RESTART_MS = 10_000;
const STABLE_MS = 2_000;
const METRICS_MS = 2_000;
/** A front door that has not taken a connection handed to it this long gets no more until it does. */
const TAKE_STALL_MS = 500;
/** Targets kept for a front door's later question (an answer to run, a fallback): gone after this. */
const REF_TTL_MS = 5 * 60_000;

export interface FrontDoorProcessEvents {
  ready: [];
  died: [];
}

/**
 * One front-door process as the supervisor sees it: started, handed client connections,
 * asked where each request goes, started again when it dies. A connection it held dies with
 * it; the client reconnects and is handed to another.
 */
export class FrontDoorProcess extends EventEmitter<FrontDoorProcessEvents> {
  readonly index: number;
  restarts = 0;
  /** Client connections it holds now. */
  connections = 0;
  /**
   * Connections handed to it whose descriptor has not gone out yet (Node sends one handle at a
   * time, each after the child acknowledged the last): still the supervisor's to serve if it dies.
   */
  readonly #handing = new Map<Socket, { at: number; otherwise: (socket: Socket) => void }>();
  #child: ChildProcess | undefined;
  #ready = false;
  #stopping = false;
  #startedAt = 0;
  #delay = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #exited: Promise<void> = Promise.resolve();
  #nextRef = 1;
  #nextAsk = 1;
  readonly #refs = new Map<number, { target: Target; at: number }>();
  /** Questions the front door stopped waiting for (it timed out) while they were still being answered. */
  readonly #abandoned = new Set<number>();
  #prunedAt = 0;
  readonly #metrics = new Map<number, (text: string) => void>();
  readonly #env: Record<string, string>;
  readonly #routing: FrontDoorRouting;
  readonly #state: () => FrontDoorState;
  readonly #log: Logger;
  /** A ready front door says it is alive twice a second: one that stops is stuck, and is killed so it restarts. */
  readonly #watch: SilenceWatch;

  constructor(opts: { index: number; env: Record<string, string>; routing: FrontDoorRouting; state: () => FrontDoorState; logger: Logger; hangTimeoutMs: number }) {
    super();
    this.index = opts.index;
    this.#watch = new SilenceWatch({
      timeoutMs: opts.hangTimeoutMs,
      onSilent: (silentMs) => {
        this.#log.error(
          { event: 'FRONT_DOOR_HUNG', attributes: { 'front_door.index': this.index, 'front_door.pid': this.#child?.pid ?? 0, 'front_door.silent_ms': Math.round(silentMs) } },
          'a front-door process stopped answering; killing it so its clients reconnect elsewhere',
        );
        this.#ready = false;
        this.#child?.kill('SIGKILL');
      },
    });
    this.#env = { ...opts.env, [FRONT_DOOR_INDEX_ENV]: String(opts.index) };
    this.#routing = opts.routing;
    this.#state = opts.state;
    this.#log = opts.logger;
  }

  get ready(): boolean {
    return this.#ready;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  start(): void {
    this.#startedAt = Date.now();
    const child = fork(ENTRY, process.argv.slice(2), { env: this.#env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', detached: true });
    this.#child = child;
    child.on('message', (m) => {
      this.#watch.beat();
      if (isFromFrontDoor(m)) this.#onMessage(child, m);
    });
    // A send to a child that just died (its channel not yet seen closed) fails here, not in a throw.
    child.on('error', (error) => this.#log.warn({ event: 'FRONT_DOOR_CHANNEL_FAILED', error, attributes: { 'front_door.index': this.index } }, 'a message to a front-door process could not be sent'));
    this.#exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.#watch.disarm();
        this.#child = undefined;
        this.#ready = false;
        this.connections = 0;
        // Never sent to it: nothing of them was read, so the supervisor relays them itself.
        const unsent = [...this.#handing];
        this.#handing.clear();
        for (const [socket, h] of unsent) if (!socket.destroyed) h.otherwise(socket);
        this.#refs.clear();
        this.#abandoned.clear();
        for (const done of this.#metrics.values()) done('');
        this.#metrics.clear();
        resolve();
        if (this.#stopping) return;
        this.restarts++;
        if (Date.now() - this.#startedAt > STABLE_MS) this.#delay = 0;
        this.#log.error(
          { event: 'FRONT_DOOR_DIED', attributes: { 'front_door.index': this.index, 'front_door.exit_code': code, 'front_door.signal': signal, 'front_door.restart_in_ms': this.#delay } },
          'a front-door process died; its clients reconnect to the others while it starts again',
        );
        this.emit('died');
        this.#restartTimer = setTimeout(() => this.start(), this.#delay);
        this.#delay = Math.min(LONGEST_RESTART_MS, Math.max(250, this.#delay * 2));
      });
    });
  }

  /**
   * Hands it an accepted client connection (paused: nothing was read from it here). A process
   * that died before it could take it gives it to `otherwise`.
   */
  take(socket: Socket, otherwise: (socket: Socket) => void): boolean {
    const child = this.#child;
    if (!this.#ready || !child?.connected || this.#stalled()) return false;
    this.#handing.set(socket, { at: performance.now(), otherwise });
    // Kept open here until it is sent: a send that fails leaves a socket `otherwise` can still serve.
    child.send({ type: 'connection' } satisfies ToFrontDoor, socket, { keepOpen: true }, (err) => {
      // Already given to `otherwise` when the process died first.
      if (!this.#handing.delete(socket)) return;
      if (err) {
        otherwise(socket);
        return;
      }
      this.connections++;
      // The front door has its own descriptor of it now; this one only closes.
      socket.destroy();
    });
    return true;
  }

  /** Connections it holds or is being handed: what the supervisor balances by. */
  get load(): number {
    return this.connections + this.#handing.size;
  }

  #stalled(): boolean {
    const now = performance.now();
    for (const h of this.#handing.values()) if (now - h.at > TAKE_STALL_MS) return true;
    return false;
  }

  /** Tells it what changed: the shards' sockets, whether the instance serves, its id. */
  update(): void {
    this.#send({ type: 'state', state: this.#state() });
  }

  dropShard(index: number): void {
    this.#send({ type: 'drop-shard', index });
  }

  /** Its Prometheus exposition ('' when it does not answer in time). */
  metrics(): Promise<string> {
    if (!this.#child?.connected) return Promise.resolve('');
    const id = this.#nextAsk++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#metrics.delete(id);
        resolve('');
      }, METRICS_MS);
      this.#metrics.set(id, (text) => {
        clearTimeout(timer);
        resolve(text);
      });
      this.#send({ type: 'metrics', id });
    });
  }

  signal(signal: NodeJS.Signals): void {
    this.#stopping = true;
    this.#watch.disarm();
    clearTimeout(this.#restartTimer);
    this.#child?.kill(signal);
  }

  whenExited(): Promise<void> {
    return this.#exited;
  }

  #send(m: ToFrontDoor): void {
    if (this.#child?.connected) this.#child.send(m);
  }

  #onMessage(child: ChildProcess, m: FromFrontDoor): void {
    switch (m.type) {
      case 'alive':
        return;
      case 'ready':
        this.#ready = true;
        if (!this.#stopping) this.#watch.arm();
        this.update();
        this.emit('ready');
        return;
      case 'connection-closed':
        this.connections = Math.max(0, this.connections - 1);
        return;
      case 'metrics':
        this.#metrics.get(m.id)?.(m.text);
        this.#metrics.delete(m.id);
        return;
      case 'settled': {
        const t = m.target;
        if (t.kind === 'shard') this.#routing.settled(m.key, t, m.code);
        else if (t.kind === 'instance' && t.ref !== undefined) {
          const kept = this.#take(t.ref);
          if (kept) this.#routing.settled(m.key, kept, m.code);
        }
        return;
      }
      case 'resolve':
        this.#answer(child, m.id, async () => {
          const target = await this.#routing.resolve(m.key, m.relayed);
          // Asked by a process gone since, or that stopped waiting: the request never reaches the target.
          if (this.#child !== child || this.#abandoned.delete(m.id)) {
            if (target.kind === 'shard') this.#routing.settled(m.key, target, Status.CANCELLED);
            throw new MediaError('cancelled', 'the request was given up while it was routed');
          }
          return this.#wire(target);
        });
        return;
      case 'abandon':
        this.#abandoned.add(m.id);
        return;
      case 'fallback':
        this.#answer(child, m.id, async () => {
          const kept = this.#take(m.ref);
          if (kept?.kind !== 'instance' || !kept.fallback) throw new MediaError('unavailable', 'the call could not be placed; try again');
          return this.#wire(await kept.fallback());
        });
        return;
      case 'run':
        this.#answer(child, m.id, async () => {
          const kept = this.#take(m.ref);
          if (kept?.kind !== 'answer') throw new MediaError('unavailable', 'the request could not be answered; try again');
          return kept.run();
        });
    }
  }

  #answer(child: ChildProcess, id: number, work: () => Promise<unknown>): void {
    work().then(
      (value) => child.connected && child.send({ type: 'reply', id, ok: true, value } satisfies ToFrontDoor),
      (err: unknown) => {
        const error = err instanceof MediaError ? { code: err.code, message: err.message } : { code: 'internal' as const, message: 'the request could not be routed' };
        if (!(err instanceof MediaError)) this.#log.error({ event: 'FRONT_DOOR_ROUTE_FAILED', error: err }, 'routing a front door’s request failed');
        if (child.connected) child.send({ type: 'reply', id, ok: false, error } satisfies ToFrontDoor);
      },
    );
  }

  #wire(t: Target): WireTarget {
    if (t.kind === 'shard') return { kind: 'shard', index: t.index };
    if (t.kind === 'instance') return { kind: 'instance', id: t.id, address: t.address, ...(t.fallback ? { ref: this.#keep(t) } : {}) };
    return { kind: 'answer', ref: this.#keep(t) };
  }

  #keep(t: Target): number {
    const now = Date.now();
    // A request that closed before it needed its target leaves it here: old ones go, looked for once a minute.
    if (this.#refs.size > 1000 && now - this.#prunedAt > 60_000) {
      this.#prunedAt = now;
      for (const [ref, k] of this.#refs) if (now - k.at > REF_TTL_MS) this.#refs.delete(ref);
    }
    const ref = this.#nextRef++;
    this.#refs.set(ref, { target: t, at: now });
    return ref;
  }

  #take(ref: number): Target | undefined {
    const kept = this.#refs.get(ref);
    this.#refs.delete(ref);
    return kept?.target;
  }
}
