import { Redis } from 'ioredis';
import type { Logger } from '../logging/logger.ts';
import type { CallEntry } from './messages.ts';
import { InstanceBus } from './instance-bus.ts';

/** What an instance tells the others of itself, refreshed with every heartbeat. */
export interface InstanceInfo {
  id: string;
  /** host:port of its gRPC front door. */
  grpc: string;
  /** host:port of its HTTP port (signaling, the demo). */
  http: string;
  rtpMin: number;
  rtpMax: number;
  calls: number;
  at: number;
}

const PREFIX = 'sentiric-media:';
const key = {
  instances: `${PREFIX}instances`,
  instance: (id: string) => `${PREFIX}instance:${id}`,
  call: (callId: string) => `${PREFIX}call:${callId}`,
  calls: (id: string) => `${PREFIX}calls:${id}`,
  lost: (id: string) => `${PREFIX}lost:${id}`,
  conference: (conferenceId: string) => `${PREFIX}conference:${conferenceId}`,
  conferences: (id: string) => `${PREFIX}conferences:${id}`,
};
const DEL_IF_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** A call's owner entry outlives any call; it is removed when the call ends or its instance is lost. */
const CALL_TTL_S = 24 * 3600;

export class RegistryError extends Error {}

/**
 * The instances that serve one platform, in one Redis: each registers with a heartbeat and a
 * TTL, names the RTP range it hands out (ranges must not overlap: a port names one call
 * across all of them) and the calls it carries. Any instance finds a call's owner here; the
 * first survivor to see an instance's key expire reports that instance's calls lost.
 */
export class InstanceRegistry {
  readonly #redis: Redis;
  readonly #self: Omit<InstanceInfo, 'calls' | 'at'>;
  readonly #ttlMs: number;
  readonly #log: Logger;
  readonly #mine = new Map<string, string>();
  #live = new Map<string, InstanceInfo>();
  /** Instances nothing could connect to, with the heartbeat they had then: skipped until they beat again. */
  readonly #unreachable = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #calls: () => number = () => 0;
  #onLost: (id: string, calls: CallEntry[]) => void = () => {};
  /** Every instance hears of every other one whose heartbeat ran out (only one reports its calls). */
  #onGone: (id: string) => void = () => {};

  private constructor(redis: Redis, self: Omit<InstanceInfo, 'calls' | 'at'>, ttlMs: number, log: Logger) {
    this.#redis = redis;
    this.#self = self;
    this.#ttlMs = ttlMs;
    this.#log = log.child({ component: 'registry' });
  }

  static async connect(url: string, self: Omit<InstanceInfo, 'calls' | 'at'>, ttlMs: number, log: Logger): Promise<InstanceRegistry> {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: true, connectTimeout: 5000 });
    redis.on('error', (error: Error) => log.warn({ event: 'REGISTRY_REDIS_ERROR', component: 'registry', error }, 'Redis connection error'));
    await redis.connect();
    return new InstanceRegistry(redis, self, ttlMs, log);
  }

  get id(): string {
    return this.#self.id;
  }

  /** Joins the registry; refuses an id that is live elsewhere or a range that overlaps another's. */
  async register(opts: { calls: () => number; onLost: (id: string, calls: CallEntry[]) => void; onGone: (id: string) => void }): Promise<void> {
    this.#calls = opts.calls;
    this.#onLost = opts.onLost;
    this.#onGone = opts.onGone;
    await this.#refresh();
    const me = this.#self;
    if (this.#live.has(me.id)) {
      // Our own previous process (crashed, restarted at once) or another instance with our id:
      // the first one's heartbeat runs out within the TTL, the other's does not.
      this.#log.warn({ event: 'REGISTRY_ID_LIVE', attributes: { 'instance.id': me.id, 'wait.ms': this.#ttlMs } }, 'this instance id is still live in the registry; waiting for its heartbeat to run out');
      await new Promise((r) => setTimeout(r, this.#ttlMs + 500));
      await this.#refresh();
      if (this.#live.has(me.id)) throw new RegistryError(`instance id ${me.id} is already live in the registry; give each instance its own INSTANCE_ID`);
    }
    for (const other of this.#live.values()) {
      if (me.rtpMin <= other.rtpMax && other.rtpMin <= me.rtpMax) {
        throw new RegistryError(`RTP ports ${me.rtpMin}-${me.rtpMax} overlap instance ${other.id}'s ${other.rtpMin}-${other.rtpMax}: a port must name one call across instances`);
      }
    }
    // Calls a previous process of this id left: it is gone, and so are they (reported once,
    // by this process or by a survivor that saw its heartbeat run out first).
    await this.#reportLost(me.id);
    await this.#beat();
    this.#timer = setInterval(() => void this.#tick(), Math.max(500, Math.floor(this.#ttlMs / 3)));
    this.#timer.unref();
    this.#log.info({ event: 'REGISTRY_JOINED', attributes: { 'instance.id': me.id, 'instances.live': this.#live.size + 1 } }, 'joined the instance registry');
  }

  /** The live instance that hands out this port, other than this one. */
  instanceForPort(port: number): InstanceInfo | null {
    for (const i of this.#live.values()) if (i.id !== this.#self.id && port >= i.rtpMin && port <= i.rtpMax) return i;
    return null;
  }

  instance(id: string): InstanceInfo | undefined {
    return this.#live.get(id);
  }

  /** Reads the live instances now instead of at the next heartbeat. */
  async sync(): Promise<void> {
    await this.#run(async () => void (await this.#refresh()));
  }

  others(): InstanceInfo[] {
    return [...this.#live.values()].filter((i) => i.id !== this.#self.id);
  }

  /** Other instances that may take a new call, least busy first: live, and not found unreachable since their last heartbeat. */
  placeable(): InstanceInfo[] {
    return this.others()
      .filter((i) => this.#unreachable.get(i.id) !== i.at)
      .sort((x, y) => x.calls - y.calls);
  }

  /** Nothing answered at this instance's address: it is passed over until its next heartbeat (a crash is reported when its key runs out). */
  unreachable(id: string): void {
    const i = this.#live.get(id);
    if (i) this.#unreachable.set(id, i.at);
  }

  /**
   * The instance where the browsers of a room that is no call's meet: the same for every
   * instance that asks (a hash over the live ids); null when it is this one.
   */
  roomHome(room: string): InstanceInfo | null {
    const ids = [...new Set([...this.#live.keys(), this.#self.id])].sort();
    let h = 2166136261;
    for (let i = 0; i < room.length; i++) h = Math.imul(h ^ room.charCodeAt(i), 16777619);
    const id = ids[(h >>> 0) % ids.length]!;
    return id === this.#self.id ? null : (this.#live.get(id) ?? null);
  }

  /**
   * The instance a browser room lives on, if another one: a call's room with its call, a
   * conference's room with its conference, any other room at its home by id.
   */
  async roomOwner(room: string): Promise<InstanceInfo | null> {
    const [call, conference] = await this.#redis.mget(key.call(room), key.conference(room));
    const id = call ?? conference;
    if (id) return id === this.#self.id ? null : (this.#live.get(id) ?? null);
    return this.roomHome(room);
  }

  /** The live instance that carries a call, if another one does. */
  async ownerOf(callId: string): Promise<InstanceInfo | null> {
    const id = await this.#redis.get(key.call(callId));
    if (!id || id === this.#self.id) return null;
    return this.#live.get(id) ?? null;
  }

  /** Claims a new call for this instance; returns the owner another instance claimed first, if one did. */
  async claim(callId: string): Promise<InstanceInfo | null> {
    const k = key.call(callId);
    const set = await this.#redis.set(k, this.#self.id, 'EX', CALL_TTL_S, 'NX');
    if (set === 'OK') return null;
    const owner = await this.#redis.get(k);
    if (!owner || owner === this.#self.id) return null;
    const live = this.#live.get(owner);
    if (live) return live;
    // A stale claim of an instance that is gone: take it over.
    await this.#redis.set(k, this.#self.id, 'EX', CALL_TTL_S);
    return null;
  }

  /** Claims a new call for another instance, which will place it; the instance that holds the claim (null: this one, or one that is gone). */
  async claimFor(callId: string, instanceId: string): Promise<InstanceInfo | null> {
    const k = key.call(callId);
    const set = await this.#redis.set(k, instanceId, 'EX', CALL_TTL_S, 'NX');
    const owner = set === 'OK' ? instanceId : await this.#redis.get(k);
    if (!owner || owner === this.#self.id) return null;
    return this.#live.get(owner) ?? null;
  }

  /** A claim whose AllocatePort failed. */
  unclaim(callId: string): void {
    if (this.#mine.has(callId)) return;
    void this.#script(DEL_IF_OWNER, [key.call(callId)], [this.#self.id]);
  }

  /**
   * The instance where a conference is mixed, for every request about it: the one that
   * created it. `create`: this instance claims it when nobody holds it.
   */
  async conferenceOwner(conferenceId: string, create: boolean): Promise<InstanceInfo | null> {
    const k = key.conference(conferenceId);
    if (create) {
      const set = await this.#redis.set(k, this.#self.id, 'EX', CALL_TTL_S, 'NX');
      if (set === 'OK') {
        await this.#redis.sadd(key.conferences(this.#self.id), conferenceId);
        return null;
      }
    }
    const owner = await this.#redis.get(k);
    if (!owner || owner === this.#self.id) return null;
    const live = this.#live.get(owner);
    if (live || !create) return live ?? null;
    // Held by an instance that is gone: its conference went with it.
    await this.#redis.multi().set(k, this.#self.id, 'EX', CALL_TTL_S).sadd(key.conferences(this.#self.id), conferenceId).exec();
    return null;
  }

  /** A conference of this instance ended (or was never made): its id is free again. */
  conferenceEnded(conferenceId: string): void {
    void this.#run(async () => {
      await this.#redis.srem(key.conferences(this.#self.id), conferenceId);
      await this.#script(DEL_IF_OWNER, [key.conference(conferenceId)], [this.#self.id]);
    });
  }

  /** Requests and notes to the other instances, over this registry's Redis. */
  openBus(): Promise<InstanceBus> {
    return InstanceBus.open(this.#redis, this.#self.id, this.#log);
  }

  callOpened(c: CallEntry): void {
    const member = JSON.stringify(c);
    this.#mine.set(c.callId, member);
    void this.#run(async () => {
      await this.#redis.multi().set(key.call(c.callId), this.#self.id, 'EX', CALL_TTL_S).sadd(key.calls(this.#self.id), member).exec();
    });
  }

  callClosed(callId: string): void {
    const member = this.#mine.get(callId);
    if (member === undefined) return;
    this.#mine.delete(callId);
    void this.#run(async () => {
      await this.#redis.srem(key.calls(this.#self.id), member);
      await this.#script(DEL_IF_OWNER, [key.call(callId)], [this.#self.id]);
    });
  }

  /** Leaves the registry (a drained instance): its calls have ended. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    try {
      await this.#dropConferences(this.#self.id);
      await this.#redis.multi().del(key.instance(this.#self.id)).srem(key.instances, this.#self.id).del(key.calls(this.#self.id)).exec();
    } catch (error) {
      this.#log.warn({ event: 'REGISTRY_LEAVE_FAILED', error }, 'could not leave the instance registry');
    }
    this.#redis.disconnect();
  }

  async #tick(): Promise<void> {
    await this.#run(async () => {
      await this.#beat();
      const before = new Set(this.#live.keys());
      const gone = await this.#refresh();
      for (const id of before) if (id !== this.#self.id && !this.#live.has(id)) this.#onGone(id);
      for (const id of gone) await this.#reportLost(id);
    });
  }

  async #beat(): Promise<void> {
    const info: InstanceInfo = { ...this.#self, calls: this.#calls(), at: Date.now() };
    await this.#redis.multi().set(key.instance(info.id), JSON.stringify(info), 'PX', this.#ttlMs).sadd(key.instances, info.id).exec();
  }

  /** Reads every live instance; returns the ids whose heartbeat expired. */
  async #refresh(): Promise<string[]> {
    const ids = await this.#redis.smembers(key.instances);
    const values = ids.length ? await this.#redis.mget(...ids.map(key.instance)) : [];
    const live = new Map<string, InstanceInfo>();
    const gone: string[] = [];
    ids.forEach((id, i) => {
      const v = values[i];
      if (v) live.set(id, JSON.parse(v) as InstanceInfo);
      else if (id !== this.#self.id) gone.push(id);
    });
    this.#live = live;
    for (const [id, at] of this.#unreachable) if (live.get(id)?.at !== at) this.#unreachable.delete(id);
    return gone;
  }

  /** One survivor (whoever takes the lock) reports a lost instance's calls. */
  async #reportLost(id: string): Promise<void> {
    const won = await this.#redis.set(key.lost(id), this.#self.id, 'EX', 60, 'NX');
    if (won !== 'OK') return;
    const members = await this.#redis.smembers(key.calls(id));
    const calls = members.map((m) => JSON.parse(m) as CallEntry);
    for (const c of calls) await this.#script(DEL_IF_OWNER, [key.call(c.callId)], [id]);
    await this.#dropConferences(id);
    await this.#redis.multi().del(key.calls(id)).srem(key.instances, id).del(key.lost(id)).exec();
    if (calls.length === 0 && id === this.#self.id) return;
    this.#log.error({ event: 'INSTANCE_LOST', attributes: { 'instance.id': id, 'calls.lost': calls.length } }, 'a media instance stopped answering; its calls are lost');
    this.#onLost(id, calls);
  }

  /** The conference ids an instance held: free again (their conferences ended with it). */
  async #dropConferences(id: string): Promise<void> {
    const ids = await this.#redis.smembers(key.conferences(id));
    for (const c of ids) await this.#script(DEL_IF_OWNER, [key.conference(c)], [id]);
    await this.#redis.del(key.conferences(id));
  }

  #script(lua: string, keys: string[], args: string[]): Promise<unknown> {
    return this.#redis.eval(lua, keys.length, ...keys, ...args);
  }

  async #run(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      this.#log.warn({ event: 'REGISTRY_UPDATE_FAILED', error }, 'the instance registry could not be updated');
    }
  }
}
