import { randomBytes, randomUUID } from 'node:crypto';
import type { LinkPeer } from '../bridge/frame-link.ts';
import type { ParticipantState } from '../conference/conference.ts';
import { MediaError } from '../errors/media-error.ts';
import type { ConferenceSeat, ShardMessage, SupervisorMessage } from './messages.ts';
import type { ShardProcess } from './shard-process.ts';

type HalfReply = Extract<ShardMessage, { type: 'bridge-opened' | 'bridge-refused' }>;
const OPEN_TIMEOUT_MS = 5000;
/** A bridge or seat cut by another instance's shard death is tried again this often, for as long as a shard takes to come back. */
const REMAKE_EVERY_MS = 500;
const REMAKE_FOR_MS = 30_000;

/** A call as the supervisor finds it: on one of its shards, or on another instance (by port, or by call id when `port` is 0). */
export type CallAt = { shard: number; port: number } | { instance: string; port: number; callId?: string };

/** Where one half of a leg is: a shard of this instance, or another instance. */
type Side = { shard: number } | { instance: string };

/** A half another instance asks this one to open, for one of its calls. */
export interface RemoteHalfRequest {
  id: string;
  /** The call's port, or 0 and its id. */
  port: number;
  callId?: string;
  /** base64, 16 bytes: the key of the sealed link. */
  token: string;
  peer: string;
  /** The role the half takes on the sealed link (the other half has the other one). */
  role: 0 | 1;
  inConference?: string;
}

/** What this instance does with other instances' halves (over the instance bus). */
export interface RemoteHalves {
  /** Opens the half on the other instance: the address and port its frames come from and go to, and its call's id. */
  open(instance: string, req: RemoteHalfRequest): Promise<{ peer: LinkPeer; callId: string }>;
  connect(instance: string, id: string, peer: LinkPeer): void;
  /**
   * `release`: the call was kicked from a conference, its media ends too. `cut`: the half's
   * process died and its call goes on in the next one, so the bridge is worth making again.
   */
  close(instance: string, id: string, release: boolean, cut?: boolean): void;
}

/** The second step starts once the first succeeded; both outcomes, as Promise.allSettled gives them. */
async function settledInTurn<A, B>(first: Promise<A>, then: (a: A) => Promise<B>): Promise<[PromiseSettledResult<A>, PromiseSettledResult<B>]> {
  const [a] = await Promise.allSettled([first]);
  if (a.status === 'rejected') return [a, { status: 'rejected', reason: a.reason }];
  const [b] = await Promise.allSettled([then(a.value)]);
  return [a, b];
}

/** A conference seat for a call of another process, as it was made. */
interface Seat {
  call: CallAt;
  home: number;
  seat: ConferenceSeat;
}

const isShard = (s: Side): s is { shard: number } => 'shard' in s;
const sideOf = (c: CallAt): Side => ('shard' in c ? { shard: c.shard } : { instance: c.instance });

/**
 * Every leg whose two halves are in two processes: bridges of two calls and conference seats
 * of calls another process carries. Each shard opens its half (a UDP socket carrying 20 ms
 * frames each way: over loopback between shards, sealed across machines), the supervisor
 * tells each half where the other is, and a half that closes (unbridged, left, its call
 * ended, its process gone) closes the other.
 */
export class Legs {
  readonly #shards: readonly ShardProcess[];
  /** The address other machines reach this instance's halves at, and the halves of theirs. */
  readonly #host: () => string;
  readonly #remote: () => RemoteHalves | undefined;
  /** Whether a call is still carried (here, or by the instance that owns its port). */
  readonly #callLive: (c: CallAt) => boolean;
  readonly #remakes = new Set<NodeJS.Timeout>();
  readonly #waiting = new Map<string, (r: HalfReply) => void>();
  readonly #live = new Map<string, [Side, Side]>();
  /** The calls of each bridge (not of conference seats): made again after a shard's death. */
  readonly #calls = new Map<string, [CallAt, CallAt]>();
  /** Bridges a shard's death cut, made again once it is back where both calls went on. */
  readonly #cut: [CallAt, CallAt][] = [];
  /** The call and seat of each conference seat this instance made: made again when the call's process dies. */
  readonly #seats = new Map<string, Seat>();
  /** Seats whose call's shard died, joined again once it is back and the call went on. */
  readonly #cutSeats: Seat[] = [];
  /** How a seat is set now (muted, deaf, gain), as its conference last said. */
  readonly #seatNow: (home: number, seat: ConferenceSeat) => ConferenceSeat;

  constructor(opts: {
    shards: readonly ShardProcess[];
    host: () => string;
    remote: () => RemoteHalves | undefined;
    live: (c: CallAt) => boolean;
    seatNow: (home: number, seat: ConferenceSeat) => ConferenceSeat;
  }) {
    this.#shards = opts.shards;
    this.#host = opts.host;
    this.#remote = opts.remote;
    this.#callLive = opts.live;
    this.#seatNow = opts.seatNow;
  }

  /** Stops trying to make cut bridges and seats again. */
  close(): void {
    for (const t of this.#remakes) clearTimeout(t);
    this.#remakes.clear();
  }

  /** A leg message one of this instance's shards sent. */
  handle(shard: number, m: ShardMessage): void {
    if (m.type === 'bridge-opened' || m.type === 'bridge-refused') {
      this.#waiting.get(`${m.id}:${shard}`)?.(m);
      return;
    }
    if (m.type !== 'bridge-closed') return;
    const pair = this.#live.get(m.id);
    if (!pair) return;
    this.#forget(m.id);
    const other = isShard(pair[0]) && pair[0].shard === shard ? pair[1] : pair[0];
    // A conference kicked the call: its own process ends its media too.
    this.#close(other, m.id, m.reason === 'kicked');
  }

  /**
   * A shard died: the other halves of its legs close; its bridges, and seats of its calls in
   * other shards' conferences, are made again once it is back. (Seats in its own conferences
   * are made again with the conferences, from their snapshots.)
   */
  shardDied(shard: number): void {
    for (const [id, pair] of this.#live) {
      const mine = pair.findIndex((s) => isShard(s) && s.shard === shard);
      if (mine < 0) continue;
      const calls = this.#calls.get(id);
      const seat = this.#seats.get(id);
      this.#forget(id);
      if (calls) this.#cut.push(calls);
      if (seat && seat.home !== shard) this.#cutSeats.push({ ...seat, seat: this.#seatNow(seat.home, seat.seat) });
      this.#close(pair[1 - mine]!, id, false, true);
    }
  }

  /** Another instance is gone: this instance's halves of legs with it close. */
  instanceLost(instance: string): void {
    for (const [id, pair] of this.#live) {
      const theirs = pair.findIndex((s) => !isShard(s) && s.instance === instance);
      if (theirs < 0) continue;
      this.#forget(id);
      this.#close(pair[1 - theirs]!, id, false);
    }
  }

  /** A shard is back: bridges and seats its death cut are made again where the calls are live. */
  async shardReady(shard: number): Promise<number> {
    let made = 0;
    for (const s of this.#cutSeats.splice(0)) {
      if (!('shard' in s.call) || s.call.shard !== shard) {
        this.#cutSeats.push(s);
        continue;
      }
      if (!this.#callLive(s.call) || !this.#shards[s.home]?.ready) continue;
      try {
        await this.joinConference(s.call, s.home, s.seat);
        made++;
      } catch {
        // Left meanwhile, or the conference ended: nothing to join again.
      }
    }
    for (const pair of this.#cut.splice(0)) {
      if (!pair.some((c) => 'shard' in c && c.shard === shard)) {
        this.#cut.push(pair);
        continue;
      }
      if (!this.#callLive(pair[0]) || !this.#callLive(pair[1])) continue;
      try {
        await this.bridge(pair[0], pair[1]);
        made++;
      } catch {
        // A call that cannot be bridged now (ended, or bridged elsewhere meanwhile) stays as it is.
      }
    }
    return made;
  }

  /** Bridges two calls, at least `a` on one of this instance's shards. */
  async bridge(a: CallAt, b: CallAt): Promise<void> {
    const id = randomUUID();
    const token = randomBytes(16).toString('base64');
    const network = !('shard' in a) || !('shard' in b);
    const [ra, rb] = await Promise.allSettled([this.#openCall(id, a, token, `port ${b.port}${'instance' in b ? ` on media instance ${b.instance}` : ''}`, network, 0), this.#openCall(id, b, token, `port ${a.port}`, network, 1)]);
    if (ra.status === 'rejected' || rb.status === 'rejected') {
      // Whatever half did open (or answers late) closes again: neither call stays busy.
      this.#close(sideOf(a), id, false);
      this.#close(sideOf(b), id, false);
      throw (ra.status === 'rejected' ? ra.reason : (rb as PromiseRejectedResult).reason) as Error;
    }
    this.#live.set(id, [sideOf(a), sideOf(b)]);
    this.#calls.set(id, [a, b]);
    this.#connect(sideOf(a), id, rb.value.peer);
    this.#connect(sideOf(b), id, ra.value.peer);
  }

  /**
   * A call of another process joins a conference one of this instance's shards mixes: the
   * call's process opens its half as for a bridge, the conference's shard a seat; answers
   * the seat's participant.
   */
  async joinConference(call: CallAt, home: number, seat: ConferenceSeat): Promise<ParticipantState> {
    const id = randomUUID();
    const token = randomBytes(16).toString('base64');
    const network = 'instance' in call;
    const openSeat = (callId: string) => this.#openHalf(id, home, { type: 'bridge-open', id, port: 0, token, peer: `port ${call.port}`, seat: { ...seat, callId }, ...(network ? { network: { role: 0 as const } } : {}) });
    const callHalf = this.#openCall(id, call, token, `conference ${seat.conferenceId}`, network, 1, seat.conferenceId);
    // Another instance's call is known here by its port or its id only: the seat waits for the other.
    const [rc, rs] = network ? await settledInTurn(callHalf, (c) => openSeat(c.callId)) : await Promise.allSettled([callHalf, openSeat(seat.callId)]);
    if (rc.status === 'rejected' || rs.status === 'rejected') {
      this.#close(sideOf(call), id, false);
      this.#close({ shard: home }, id, false);
      throw (rc.status === 'rejected' ? rc.reason : (rs as PromiseRejectedResult).reason) as Error;
    }
    this.#live.set(id, [sideOf(call), { shard: home }]);
    this.#seats.set(id, { call, home, seat });
    this.#connect(sideOf(call), id, rs.value.peer);
    this.#connect({ shard: home }, id, rc.value.peer);
    return rs.value.participant!;
  }

  /** Another instance asks for a half of one of this instance's calls (it knows where its own half is). */
  async openForInstance(from: string, shard: number, req: RemoteHalfRequest, callId: string): Promise<{ peer: LinkPeer; callId: string }> {
    const opened = await this.#openHalf(req.id, shard, { type: 'bridge-open', id: req.id, port: req.port, token: req.token, peer: `${req.peer} on media instance ${from}`, network: { role: req.role }, ...(req.inConference ? { inConference: req.inConference } : {}) });
    this.#live.set(req.id, [{ shard }, { instance: from }]);
    return { peer: opened.peer, callId };
  }

  /** The other instance says where its half is. */
  connectFromInstance(from: string, id: string, peer: LinkPeer): void {
    const pair = this.#live.get(id);
    const mine = pair?.find((s) => isShard(s));
    if (!pair || !mine || !pair.some((s) => !isShard(s) && s.instance === from)) return;
    this.#connect(mine, id, peer);
  }

  /** The other instance's half closed; `cut` when its shard died, and a bridge this instance made is made again. */
  closeFromInstance(from: string, id: string, release: boolean, cut = false): void {
    const pair = this.#live.get(id);
    if (!pair || !pair.some((s) => !isShard(s) && s.instance === from)) return;
    const calls = this.#calls.get(id);
    const seat = this.#seats.get(id);
    this.#forget(id);
    for (const s of pair) if (isShard(s)) this.#close(s, id, release, cut);
    if (!cut) return;
    const until = Date.now() + REMAKE_FOR_MS;
    if (calls) this.#retry(() => this.bridge(calls[0], calls[1]), () => this.#callLive(calls[0]) && this.#callLive(calls[1]), until);
    if (seat) {
      const again = this.#seatNow(seat.home, seat.seat);
      this.#retry(() => this.joinConference(seat.call, seat.home, again), () => this.#callLive(seat.call) && this.#shards[seat.home]?.ready === true, until);
    }
  }

  /**
   * The other instance's shard restarts on its own clock, which this one cannot watch: the
   * bridge is asked for again until that shard carries the call (or a call ends, or the
   * other instance is gone, or one of the calls was bridged elsewhere meanwhile).
   */
  #retry(make: () => Promise<unknown>, live: () => boolean, until: number): void {
    const t = setTimeout(() => {
      this.#remakes.delete(t);
      if (!live()) return;
      make().catch((e: unknown) => {
        const settled = e instanceof MediaError && (e.code === 'failed_precondition' || e.code === 'already_exists');
        if (!settled && Date.now() < until) this.#retry(make, live, until);
      });
    }, REMAKE_EVERY_MS);
    this.#remakes.add(t);
  }

  #forget(id: string): void {
    this.#live.delete(id);
    this.#calls.delete(id);
    this.#seats.delete(id);
  }

  /** Opens a call's half, here or on the other instance: where the other half must send, and the call's id where known. */
  async #openCall(id: string, c: CallAt, token: string, peer: string, network: boolean, role: 0 | 1, inConference?: string): Promise<{ peer: LinkPeer; callId: string }> {
    if ('shard' in c) {
      const m = await this.#openHalf(id, c.shard, { type: 'bridge-open', id, port: c.port, token, peer, ...(network ? { network: { role } } : {}), ...(inConference ? { inConference } : {}) });
      return { peer: m.peer, callId: '' };
    }
    const remote = this.#remote();
    if (!remote) throw new MediaError('failed_precondition', `port ${c.port} is carried by another media instance, and this one shares no registry`);
    return remote.open(c.instance, { id, port: c.port, ...(c.callId ? { callId: c.callId } : {}), token, peer, role, ...(inConference ? { inConference } : {}) });
  }

  #openHalf(id: string, shardIndex: number, msg: Extract<SupervisorMessage, { type: 'bridge-open' }>): Promise<{ peer: LinkPeer; participant?: ParticipantState }> {
    const shard = this.#shards[shardIndex];
    const what = msg.seat ? `conference ${msg.seat.conferenceId}` : `port ${msg.port}`;
    if (!shard?.ready) return Promise.reject(new MediaError('unavailable', `the media shard carrying ${what} is restarting; try again`));
    return new Promise((resolve, reject) => {
      const key = `${id}:${shardIndex}`;
      const timer = setTimeout(() => done({ type: 'bridge-refused', id, code: 'unavailable', message: `the media shard carrying ${what} did not answer` }), OPEN_TIMEOUT_MS);
      const done = (r: HalfReply): void => {
        clearTimeout(timer);
        this.#waiting.delete(key);
        if (r.type === 'bridge-refused') reject(new MediaError(r.code, r.message));
        else resolve({ peer: { address: msg.network ? this.#host() : '127.0.0.1', port: r.udpPort }, ...(r.participant ? { participant: r.participant } : {}) });
      };
      this.#waiting.set(key, done);
      shard.send(msg);
    });
  }

  #connect(side: Side, id: string, peer: LinkPeer): void {
    if (isShard(side)) this.#shards[side.shard]?.send({ type: 'bridge-connect', id, peer });
    else this.#remote()?.connect(side.instance, id, peer);
  }

  #close(side: Side, id: string, release: boolean, cut = false): void {
    if (isShard(side)) this.#shards[side.shard]?.send({ type: 'bridge-close', id, ...(release ? { release: true } : {}), ...(cut ? { cut: true } : {}) });
    else this.#remote()?.close(side.instance, id, release, cut);
  }
}
