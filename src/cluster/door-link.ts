import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { status as Status } from '@grpc/grpc-js';
import { MediaError } from '../errors/media-error.ts';
import type { Logger } from '../logging/logger.ts';
import type { FrontDoorRouting, Target } from './front-door.ts';
import type { DoorMessage, ToFrontDoor, WireTarget } from './front-door-messages.ts';
import type { RouteKey } from './route.ts';

/** A door that has not taken a connection handed to it this long gets no more until it does. */
const TAKE_STALL_MS = 500;
/** Targets kept for a door's later question (an answer to run, a fallback): gone after this. */
const REF_TTL_MS = 5 * 60_000;

/**
 * The supervisor's side of one door (a front-door process, or a shard holding client
 * connections): the connections handed to it, and the answers to where each of its requests
 * goes. What only the supervisor can do (answer a request, place a call elsewhere) is kept
 * here under a ref the door asks by.
 */
export class DoorLink {
  /** Client connections it holds now. */
  connections = 0;
  /**
   * Connections handed to it whose descriptor has not gone out yet (Node sends one handle at a
   * time, each after the child acknowledged the last): still the supervisor's to serve if it dies.
   */
  readonly #handing = new Map<Socket, { at: number; otherwise: (socket: Socket) => void }>();
  #nextRef = 1;
  readonly #refs = new Map<number, { target: Target; at: number }>();
  /** Questions the door stopped waiting for (it timed out) while they were still being answered. */
  readonly #abandoned = new Set<number>();
  #prunedAt = 0;
  readonly #routing: FrontDoorRouting;
  readonly #log: Logger;
  /** A shard's own index: the new calls of its connections are placed on it while it has room. */
  readonly #shard: number | undefined;

  constructor(opts: { routing: FrontDoorRouting; logger: Logger; shard?: number }) {
    this.#routing = opts.routing;
    this.#log = opts.logger;
    this.#shard = opts.shard;
  }

  /**
   * Hands `child` an accepted client connection (paused: nothing was read from it here). A
   * process that dies before it takes it gives it to `otherwise`.
   */
  take(child: ChildProcess, socket: Socket, otherwise: (socket: Socket) => void): boolean {
    if (!child.connected || this.#stalled()) return false;
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
      // The door has its own descriptor of it now; this one only closes.
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

  /** Its process exited: what it was never sent is served elsewhere, what it was asked is void. */
  exited(): void {
    this.connections = 0;
    // Never sent to it: nothing of them was read, so the supervisor relays them itself.
    const unsent = [...this.#handing];
    this.#handing.clear();
    for (const [socket, h] of unsent) if (!socket.destroyed) h.otherwise(socket);
    this.#refs.clear();
    this.#abandoned.clear();
  }

  /** One of the door's messages from `child`, its process now. `current`: whether it still is. */
  handle(child: ChildProcess, m: DoorMessage, current: () => boolean): void {
    switch (m.type) {
      case 'connection-closed':
        this.connections = Math.max(0, this.connections - 1);
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
          const key = this.#near(m.key);
          const target = await this.#routing.resolve(key, m.relayed);
          // Asked by a process gone since, or that stopped waiting: the request never reaches the target.
          if (!current() || this.#abandoned.delete(m.id)) {
            if (target.kind === 'shard') this.#routing.settled(key, target, Status.CANCELLED);
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

  /** A new call asked for by a shard's connection: that shard is where it is placed first. */
  #near(key: RouteKey): RouteKey {
    if (key.kind !== 'call') return key;
    const { door: _ignored, ...rest } = key;
    return this.#shard === undefined ? rest : { ...rest, door: this.#shard };
  }

  #answer(child: ChildProcess, id: number, work: () => Promise<unknown>): void {
    work().then(
      (value) => child.connected && child.send({ type: 'reply', id, ok: true, value } satisfies ToFrontDoor),
      (err: unknown) => {
        const error = err instanceof MediaError ? { code: err.code, message: err.message } : { code: 'internal' as const, message: 'the request could not be routed' };
        if (!(err instanceof MediaError)) this.#log.error({ event: 'FRONT_DOOR_ROUTE_FAILED', error: err }, 'routing a door’s request failed');
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
