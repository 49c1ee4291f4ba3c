import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Logger } from '../logging/logger.ts';
import { DoorLink } from './door-link.ts';
import type { FrontDoorRouting } from './front-door.ts';
import { FRONT_DOOR_INDEX_ENV, isDoorMessage, isFromFrontDoor, type FromFrontDoor, type FrontDoorState, type ToFrontDoor } from './front-door-messages.ts';
import { RestartingChild } from './restarting-child.ts';

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
  readonly #door: DoorLink;
  #ready = false;
  #nextAsk = 1;
  readonly #metrics = new Map<number, (text: string) => void>();
  readonly #state: () => FrontDoorState;
  readonly #log: Logger;
  /** Its process, started again whenever it dies; a ready front door says it is alive twice a second, so one that stops is stuck. */
  readonly #proc: RestartingChild;

  constructor(opts: { index: number; env: Record<string, string>; routing: FrontDoorRouting; state: () => FrontDoorState; logger: Logger; hangTimeoutMs: number }) {
    super();
    this.index = opts.index;
    this.#door = new DoorLink({ routing: opts.routing, logger: opts.logger });
    this.#state = opts.state;
    this.#log = opts.logger;
    this.#proc = new RestartingChild({
      env: { ...opts.env, [FRONT_DOOR_INDEX_ENV]: String(opts.index) },
      logger: opts.logger,
      hangTimeoutMs: opts.hangTimeoutMs,
      label: { event: 'FRONT_DOOR', attributes: { 'front_door.index': opts.index } },
      hooks: {
        message: (child, m) => {
          if (isFromFrontDoor(m)) this.#onMessage(child, m);
        },
        exited: (code, signal, restartInMs) => this.#onExit(code, signal, restartInMs),
        hung: (silentMs) => {
          this.#log.error(
            { event: 'FRONT_DOOR_HUNG', attributes: { 'front_door.index': this.index, 'front_door.pid': this.pid ?? 0, 'front_door.silent_ms': Math.round(silentMs) } },
            'a front-door process stopped answering; killing it so its clients reconnect elsewhere',
          );
          this.#ready = false;
        },
      },
    });
  }

  /** Times it was started again after dying. */
  get restarts(): number {
    return this.#proc.restarts;
  }

  get ready(): boolean {
    return this.#ready;
  }

  get pid(): number | undefined {
    return this.#proc.pid;
  }

  start(): void {
    this.#proc.start();
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null, restartInMs: number | null): void {
    this.#ready = false;
    this.#door.exited();
    for (const done of this.#metrics.values()) done('');
    this.#metrics.clear();
    if (restartInMs === null) return;
    this.#log.error(
      { event: 'FRONT_DOOR_DIED', attributes: { 'front_door.index': this.index, 'front_door.exit_code': code, 'front_door.signal': signal, 'front_door.restart_in_ms': restartInMs } },
      'a front-door process died; its clients reconnect to the others while it starts again',
    );
    this.emit('died');
  }

  /**
   * Hands it an accepted client connection (paused: nothing was read from it here). A process
   * that died before it could take it gives it to `otherwise`.
   */
  take(socket: Socket, otherwise: (socket: Socket) => void): boolean {
    const child = this.#proc.child;
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
    if (!this.#proc.child?.connected) return Promise.resolve('');
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
    this.#proc.signal(signal);
  }

  whenExited(): Promise<void> {
    return this.#proc.whenExited();
  }

  #send(m: ToFrontDoor): void {
    this.#proc.send(m);
  }

  #onMessage(child: ChildProcess, m: FromFrontDoor): void {
    if (isDoorMessage(m)) {
      this.#door.handle(child, m, () => this.#proc.child === child);
      return;
    }
    switch (m.type) {
      case 'alive':
        return;
      case 'ready':
        this.#ready = true;
        this.#proc.watch();
        this.update();
        this.emit('ready');
        return;
      case 'metrics':
        this.#metrics.get(m.id)?.(m.text);
        this.#metrics.delete(m.id);
    }
  }
}
