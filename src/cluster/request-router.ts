import type { Config } from '../config/schema.ts';
import { MediaError } from '../errors/media-error.ts';
import type { CallDirectory } from './call-directory.ts';
import type { CallAt, Legs } from './legs.ts';
import type { Target } from './front-door.ts';
import type { InstanceInfo, InstanceRegistry } from './instance-registry.ts';
import { place, placeNear } from './placement.ts';
import { shardOfRoom, type RouteKey } from './route.ts';
import { addToConferenceRequest } from '../grpc/schemas.ts';
import { participantMessage } from '../grpc/conference-service.ts';
import type { ShardProcess } from './shard-process.ts';
import { shardOfPort, type ShardSlice } from './shard-plan.ts';

export interface RouterDeps {
  config: Readonly<Config>;
  slices: readonly ShardSlice[];
  shards: readonly ShardProcess[];
  directory: CallDirectory;
  legs: Legs;
  instances(): InstanceRegistry | undefined;
  draining(): boolean;
}

/**
 * Where each gRPC request of the instance goes: a shard of this instance (by port slice, by
 * the call directory, or placed by load for a new call), another instance (through the
 * registry), or the front door itself (a leg between two processes: a bridge of calls two
 * shards or instances carry, a conference seat for a call of another shard or instance).
 */
/** A port nobody is known to hand out makes the registry be read again at most this often. */
const UNKNOWN_PORT_SYNC_MS = 1000;

export class RequestRouter {
  readonly #o: RouterDeps;
  #anyNext = 0;
  #syncedAt = 0;

  constructor(deps: RouterDeps) {
    this.#o = deps;
  }

  resolve(key: RouteKey, relayed: boolean): Target | Promise<Target> {
    const registry = this.#o.instances();
    if (key.kind === 'conference' && registry && !relayed) return this.#conferenceOf(key, registry);
    if (key.kind === 'call' && key.allocate && key.near !== undefined && registry && !relayed && !this.#o.draining()) return this.#nearConference(key, key.near, registry);
    return this.#resolveHere(key, relayed);
  }

  #resolveHere(key: RouteKey, relayed: boolean): Target | Promise<Target> {
    const registry = this.#o.instances();
    // An instance that joined since the last heartbeat is not known yet: its calls are, once the registry is read again.
    if (registry && !relayed && this.#unknownPort(key, registry) && Date.now() - this.#syncedAt >= UNKNOWN_PORT_SYNC_MS) {
      this.#syncedAt = Date.now();
      // A registry that cannot be read answers as before: from what is known.
      return registry.sync().then(
        () => this.#resolveHere(key, relayed),
        () => this.#resolveHere(key, relayed),
      );
    }
    const across = this.#bridgeAcross(key) ?? this.#conferenceAcross(key);
    if (across) return across;
    const local = this.#resolveLocal(key);
    if (local !== null) return { kind: 'shard', index: local };
    if (!registry || relayed) return this.#resolveNew(key);
    if (key.kind === 'port') {
      const other = registry.instanceForPort(key.port);
      return other ? { kind: 'instance', id: other.id, address: other.grpc } : this.#resolveNew(key);
    }
    if (key.kind === 'any' || key.kind === 'conference') return this.#resolveNew(key);
    const callId = key.kind === 'call' ? key.callId : key.roomId;
    return (async (): Promise<Target> => {
      const isNew = key.kind === 'call' && key.allocate && callId !== '';
      const other = isNew && !this.#o.draining() ? await registry.claim(callId) : key.kind === 'room' ? await registry.roomOwner(callId) : await registry.ownerOf(callId);
      if (other) return { kind: 'instance', id: other.id, address: other.grpc };
      if (isNew && (this.#o.draining() || !this.#placement().ok)) {
        // Draining or full here: the least busy other instance takes the call (it answers for itself).
        await registry.sync();
        const alts = registry.placeable();
        if (alts.length > 0) {
          registry.unclaim(callId);
          return this.#toInstance(alts, key, registry);
        }
      }
      return this.#resolveNew(key);
    })();
  }

  /** A port of the request that neither a shard of this instance nor any known instance hands out. */
  #unknownPort(key: RouteKey, registry: InstanceRegistry): boolean {
    if (key.kind !== 'port') return false;
    const unknown = (p: number | undefined): boolean => p !== undefined && p > 0 && shardOfPort(this.#o.slices, p) === null && registry.instanceForPort(p) === null;
    return unknown(key.port) || unknown(key.otherPort);
  }

  /** The first of these instances, then the next if nothing answers there, then this one's own placement. */
  #toInstance(alts: readonly InstanceInfo[], key: RouteKey, registry: InstanceRegistry): Target {
    const [first, ...rest] = alts;
    return {
      kind: 'instance',
      id: first!.id,
      address: first!.grpc,
      fallback: () => {
        registry.unreachable(first!.id);
        if (rest.length > 0) return this.#toInstance(rest, key, registry);
        if (this.#o.draining()) throw new MediaError('unavailable', 'the media service is draining and no other media instance answers; try again');
        if (key.kind !== 'call') return this.#resolveNew(key);
        const callId = key.callId;
        return registry.claim(callId).then((other) => (other ? { kind: 'instance', id: other.id, address: other.grpc } : this.#resolveNew(key)));
      },
    };
  }

  /** Where a call of this port is: one of this instance's shards, another instance, or nowhere known. */
  #callAt(port: number): CallAt | null {
    const shard = shardOfPort(this.#o.slices, port);
    if (shard !== null) return { shard, port };
    const other = this.#o.instances()?.instanceForPort(port);
    return other ? { instance: other.id, port } : null;
  }

  /**
   * BridgeCalls of a call of this instance with a call another shard or instance carries:
   * the front door bridges them (the instance of the first call answers).
   */
  #bridgeAcross(key: RouteKey): Target | null {
    if (key.kind !== 'port' || key.otherPort === undefined) return null;
    const a = shardOfPort(this.#o.slices, key.port);
    if (a === null) return null;
    const b = this.#callAt(key.otherPort);
    if (b === null || ('shard' in b && b.shard === a)) return null;
    const pa = key.port;
    return { kind: 'answer', run: () => this.#o.legs.bridge({ shard: a, port: pa }, b).then(() => ({ success: true })) };
  }

  /**
   * Every request about a conference goes to the instance that created it (CreateConference
   * claims the id for this instance when nobody holds it); on that instance, to its shard.
   */
  async #conferenceOf(key: Extract<RouteKey, { kind: 'conference' }>, registry: InstanceRegistry): Promise<Target> {
    const other = key.conferenceId === '' ? null : await registry.conferenceOwner(key.conferenceId, key.create === true);
    if (other) return { kind: 'instance', id: other.id, address: other.grpc };
    return this.#resolveHere(key, true);
  }

  /** A new call meant for a conference another instance mixes: placed on that instance, claimed for it first. */
  async #nearConference(key: Extract<RouteKey, { kind: 'call' }>, conferenceId: string, registry: InstanceRegistry): Promise<Target> {
    const home = await registry.conferenceOwner(conferenceId, false);
    if (!home || !registry.placeable().some((i) => i.id === home.id)) return this.#resolveHere(key, false);
    const owner = await registry.claimFor(key.callId, home.id);
    if (owner === null) return this.#resolveHere(key, false);
    return { kind: 'instance', id: owner.id, address: owner.grpc };
  }

  /** A request this instance answers itself: a port of its slices, or a call it carries. */
  #resolveLocal(key: RouteKey): number | null {
    if (key.kind === 'port') return shardOfPort(this.#o.slices, key.port);
    if (key.kind === 'call') return this.#o.directory.ownerOf(key.callId) ?? null;
    if (key.kind === 'room') return this.#o.directory.ownerOf(key.roomId) ?? null;
    if (key.kind === 'conference') return this.#conferenceShard(key);
    return null;
  }

  /** The shard of a conference: fixed by its id, so every request about it meets there. */
  #conferenceShard(key: Extract<RouteKey, { kind: 'conference' }>): number {
    return shardOfRoom(key.conferenceId, this.#o.shards.length);
  }

  /**
   * AddToConference of a call another shard or instance carries: the front door joins them,
   * the call's process sending its caller frames to the conference's shard and playing what
   * comes back.
   */
  #conferenceAcross(key: RouteKey): Target | Promise<Target> | null {
    if (key.kind !== 'conference' || !key.request) return null;
    const home = this.#conferenceShard(key);
    const entry = key.callId !== undefined ? this.#o.directory.entryOf(key.callId) : undefined;
    const port = key.port ?? entry?.port;
    const registry = this.#o.instances();
    if (port === undefined) {
      // A call id this instance does not carry: another instance may.
      if (key.callId === undefined || !registry) return null;
      const callId = key.callId;
      return registry.ownerOf(callId).then((other) => (other ? this.#join(key, home, { instance: other.id, port: 0, callId }, callId) : this.#resolveHere({ ...key, request: undefined }, true)));
    }
    const call = this.#callAt(port);
    if (call === null || ('shard' in call && call.shard === home)) return null;
    const callId = 'shard' in call ? (entry?.callId ?? this.#o.directory.callAt(port)) : (key.callId ?? '');
    if ('shard' in call && !callId) throw new MediaError('not_found', `no call session on port ${port}`);
    return this.#join(key, home, call, callId ?? '');
  }

  #join(key: Extract<RouteKey, { kind: 'conference' }>, home: number, call: CallAt, callId: string): Target {
    const parsed = addToConferenceRequest.safeParse(key.request);
    if (!parsed.success) throw new MediaError('invalid_argument', parsed.error.issues.map((i) => i.message).join('; '));
    const r = parsed.data;
    return {
      kind: 'answer',
      run: () => this.#o.legs.joinConference(call, home, { conferenceId: r.conference_id, participantId: r.participant_id, callId, muted: r.muted, deaf: r.deaf, gainDb: r.gain_db }).then(participantMessage),
    };
  }

  /** Nobody carries it yet: a new call is placed here, anything else is answered by any shard. */
  #resolveNew(key: RouteKey): Target {
    return { kind: 'shard', index: this.#placeOrAny(key) };
  }

  /**
   * Where a new call would go now (nothing is held): `prefer` first, while it has room; then
   * `door`, the shard holding the client's connection, while about as loaded as the best.
   */
  #placement(prefer?: number, door?: number): ReturnType<typeof place> {
    const all = this.#o.shards.map((s) => ({ index: s.index, ready: s.ready, load: { ...s.load, sessions: this.#o.directory.loadOn(s.index) } }));
    const limits = { maxCpu: this.#o.config.cluster.max_cpu, maxLoopLagMs: this.#o.config.cluster.max_loop_lag_ms, maxSessions: this.#o.config.cluster.max_sessions };
    if (prefer !== undefined) {
      const near = place(all.filter((c) => c.index === prefer), limits);
      if (near.ok) return near;
    }
    return placeNear(all, limits, door);
  }

  #placeOrAny(key: RouteKey): number {
    switch (key.kind) {
      case 'call': {
        if (!key.allocate || key.callId === '') return this.#anyReady();
        if (this.#o.draining()) throw new MediaError('unavailable', 'the media service is draining: it takes no new calls');
        // A call meant for a conference goes where the conference is mixed, when that shard has room.
        const placed = this.#placement(key.near !== undefined ? shardOfRoom(key.near, this.#o.shards.length) : undefined, key.door);
        if (!placed.ok) {
          this.#o.instances()?.unclaim(key.callId);
          throw new MediaError(placed.why === 'no media shard is ready' ? 'unavailable' : 'resource_exhausted', `no capacity for a new call: ${placed.why}`);
        }
        this.#o.directory.placed(key.callId, placed.index);
        return placed.index;
      }
      case 'room':
        return shardOfRoom(key.roomId, this.#o.shards.length);
      default:
        // A port in no slice: any shard answers NOT_FOUND (or INVALID_ARGUMENT) in its own words.
        return this.#anyReady();
    }
  }

  #anyReady(): number {
    const n = this.#o.shards.length;
    for (let k = 0; k < n; k++) {
      const i = (this.#anyNext + k) % n;
      if (this.#o.shards[i]!.ready) {
        this.#anyNext = i + 1;
        return i;
      }
    }
    throw new MediaError('unavailable', 'no media shard is ready; try again');
  }
}
