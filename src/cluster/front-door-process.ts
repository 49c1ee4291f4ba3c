import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logging/logger.ts';
import { DoorLink } from './door-link.ts';
import type { FrontDoorRouting } from './front-door.ts';
import { SilenceWatch } from './silence-watch.ts';
import { FRONT_DOOR_INDEX_ENV, isDoorMessage, isFromFrontDoor, type FromFrontDoor, type FrontDoorState, type ToFrontDoor } from './front-door-messages.ts';

const ENTRY = fileURLToPath(new URL('../main.js', import.meta.url));
const LONGEST_RESTART_MS = 10_000;
const STABLE_MS = 2_000;
const METRICS_MS = 2_000;

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
  readonly #door: DoorLink;
  #child: ChildProcess | undefined;
  #ready = false;
  #stopping = false;
  #startedAt = 0;
  #delay = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #exited: Promise<void> = Promise.resolve();
  #nextAsk = 1;
  readonly #metrics = new Map<number, (text: string) => void>();
  readonly #env: Record<string, string>;
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
    this.#door = new DoorLink({ routing: opts.routing, logger: opts.logger });
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
        this.#door.exited();
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
    return this.#ready && child !== undefined && this.#door.take(child, socket, otherwise);
  }

  /** Client connections it holds or is being handed: what the supervisor balances by. */
  get handed(): number {
    return this.#door.load;
  }

  /** Client connections it holds now. */
  get connections(): number {
    return this.#door.connections;
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
    if (isDoorMessage(m)) {
      this.#door.handle(child, m, () => this.#child === child);
      return;
    }
    switch (m.type) {
      case 'alive':
        return;
      case 'ready':
        this.#ready = true;
        if (!this.#stopping) this.#watch.arm();
        this.update();
        this.emit('ready');
        return;
      case 'metrics':
        this.#metrics.get(m.id)?.(m.text);
        this.#metrics.delete(m.id);
    }
  }
}
