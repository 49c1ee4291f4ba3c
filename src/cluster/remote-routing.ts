import type { LoadedConfig } from '../config/load.ts';
import { MediaError } from '../errors/media-error.ts';
import type { FrontDoorRouting, Target } from './front-door.ts';
import type { DoorMessage, FromFrontDoor, FrontDoorState, ToFrontDoor, WireTarget } from './front-door-messages.ts';
import { connectInstance } from './public-grpc.ts';
import type { RouteKey } from './route.ts';

/**
 * How long a question to the supervisor may take before the request is answered UNAVAILABLE:
 * longer than anything the supervisor waits for itself (a leg to another instance: 5 s a half).
 */
const ASK_MS = 15_000;
type Ask = Extract<FromFrontDoor, { id: number }> extends infer M ? (M extends { type: 'resolve' | 'run' | 'fallback' } ? Omit<M, 'id'> : never) : never;

/**
 * The routing of a door in a child process (a front-door process, a shard): the supervisor keeps the directory and the placement,
 * so each request's target is asked of it once, over the IPC channel; the bytes of the stream
 * then go between the client's connection, held here, and the shard, without the supervisor.
 */
export class RemoteRouting implements FrontDoorRouting {
  #state: FrontDoorState = { sockets: [], serving: false, instanceId: '' };
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout }>();
  readonly #send: (m: DoorMessage) => void;
  readonly #grpc: LoadedConfig['config']['grpc'];
  /** The supervisor's ref of an instance target with a fallback: released once the request settles. */
  readonly #refOf = new WeakMap<Target, number>();

  constructor(send: (m: DoorMessage) => void, grpc: LoadedConfig['config']['grpc']) {
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
      this.#send({ ...m, id } as DoorMessage);
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
