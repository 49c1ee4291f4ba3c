import { randomBytes, randomUUID } from 'node:crypto';
import { MediaError } from '../errors/media-error.ts';
import type { ConferenceSeat, ShardMessage } from './messages.ts';
import type { ParticipantState } from '../conference/conference.ts';
import type { ShardProcess } from './shard-process.ts';

type BridgeReply = Extract<ShardMessage, { type: 'bridge-opened' | 'bridge-refused' }>;
const OPEN_TIMEOUT_MS = 5000;

/**
 * Bridges whose two calls two shards carry: each shard opens a half for its call (a loopback
 * UDP socket carrying 20 ms frames each way), the supervisor hands each half the other's
 * port, and a half that closes (unbridged, or its call ended) closes the other.
 */
export class CrossShardBridges {
  readonly #shards: readonly ShardProcess[];
  readonly #waiting = new Map<string, (r: BridgeReply) => void>();
  readonly #live = new Map<string, [number, number]>();
  readonly #ports = new Map<string, [{ shard: number; port: number }, { shard: number; port: number }]>();
  /** Bridges a shard's death cut: made again once it is back, where both calls went on. */
  readonly #cut: [{ shard: number; port: number }, { shard: number; port: number }][] = [];

  constructor(shards: readonly ShardProcess[]) {
    this.#shards = shards;
  }

  /** A bridge message a shard sent. */
  handle(shard: number, m: ShardMessage): void {
    if (m.type === 'bridge-opened' || m.type === 'bridge-refused') {
      this.#waiting.get(`${m.id}:${shard}`)?.(m);
      return;
    }
    if (m.type !== 'bridge-closed') return;
    const pair = this.#live.get(m.id);
    if (!pair) return;
    this.#live.delete(m.id);
    this.#ports.delete(m.id);
    const other = pair[0] === shard ? pair[1] : pair[0];
    // A conference kicked the call: its own shard ends its media too.
    this.#shards[other]?.send({ type: 'bridge-close', id: m.id, ...(m.reason === 'kicked' ? { release: true } : {}) });
  }

  /** A shard died: the other halves of its bridges close. */
  shardDied(shard: number): void {
    for (const [id, pair] of this.#live) {
      if (!pair.includes(shard)) continue;
      this.#live.delete(id);
      const ports = this.#ports.get(id);
      this.#ports.delete(id);
      if (ports) this.#cut.push(ports);
      const other = pair[0] === shard ? pair[1] : pair[0];
      this.#shards[other]?.send({ type: 'bridge-close', id });
    }
  }

  /** A shard is back: bridges its death cut are made again where both calls are live. */
  async shardReady(shard: number, live: (port: number) => boolean): Promise<number> {
    let made = 0;
    for (const pair of this.#cut.splice(0)) {
      if (!pair.some((p) => p.shard === shard)) {
        this.#cut.push(pair);
        continue;
      }
      if (!live(pair[0].port) || !live(pair[1].port)) continue;
      try {
        await this.bridge(pair[0], pair[1]);
        made++;
      } catch {
        // A call that cannot be bridged now (ended, or bridged elsewhere meanwhile) stays as it is.
      }
    }
    return made;
  }

  async bridge(a: { shard: number; port: number }, b: { shard: number; port: number }): Promise<void> {
    const id = randomUUID();
    const token = randomBytes(16).toString('base64');
    const [ra, rb] = await Promise.all([this.#open(id, a, b.port, token), this.#open(id, b, a.port, token)]);
    if (ra.type === 'bridge-refused' || rb.type === 'bridge-refused') {
      // Whatever half did open (or answers late) closes again: neither call stays busy.
      for (const side of [a, b]) this.#shards[side.shard]?.send({ type: 'bridge-close', id });
      const refused = (ra.type === 'bridge-refused' ? ra : rb) as Extract<BridgeReply, { type: 'bridge-refused' }>;
      throw new MediaError(refused.code, refused.message);
    }
    this.#live.set(id, [a.shard, b.shard]);
    this.#ports.set(id, [a, b]);
    this.#shards[a.shard]!.send({ type: 'bridge-connect', id, peerPort: rb.udpPort });
    this.#shards[b.shard]!.send({ type: 'bridge-connect', id, peerPort: ra.udpPort });
  }

  /**
   * A call of one shard joins a conference another shard mixes: the call's shard opens its
   * half as for a bridge, the conference's shard a seat; answers the seat's participant.
   */
  async joinConference(call: { shard: number; port: number }, home: number, seat: ConferenceSeat): Promise<ParticipantState> {
    const id = randomUUID();
    const token = randomBytes(16).toString('base64');
    const [rc, rs] = await Promise.all([
      this.#open(id, call, 0, token, { inConference: seat.conferenceId }),
      this.#open(id, { shard: home, port: 0 }, call.port, token, { seat }),
    ]);
    if (rc.type === 'bridge-refused' || rs.type === 'bridge-refused') {
      for (const s of [call.shard, home]) this.#shards[s]?.send({ type: 'bridge-close', id });
      const refused = (rc.type === 'bridge-refused' ? rc : rs) as Extract<BridgeReply, { type: 'bridge-refused' }>;
      throw new MediaError(refused.code, refused.message);
    }
    this.#live.set(id, [call.shard, home]);
    this.#shards[call.shard]!.send({ type: 'bridge-connect', id, peerPort: rs.udpPort });
    this.#shards[home]!.send({ type: 'bridge-connect', id, peerPort: rc.udpPort });
    return rs.participant!;
  }

  #open(id: string, side: { shard: number; port: number }, peerPort: number, token: string, extra: { inConference?: string; seat?: ConferenceSeat } = {}): Promise<BridgeReply> {
    const shard = this.#shards[side.shard];
    if (!shard?.ready) return Promise.resolve({ type: 'bridge-refused', id, code: 'unavailable', message: `the media shard carrying port ${side.port} is restarting; try again` });
    return new Promise((resolve) => {
      const key = `${id}:${side.shard}`;
      const timer = setTimeout(() => done({ type: 'bridge-refused', id, code: 'unavailable', message: `the media shard carrying port ${side.port} did not answer` }), OPEN_TIMEOUT_MS);
      const done = (r: BridgeReply): void => {
        clearTimeout(timer);
        this.#waiting.delete(key);
        resolve(r);
      };
      this.#waiting.set(key, done);
      const peer = extra.inConference ? `conference ${extra.inConference}` : `port ${peerPort} on media shard ${this.#shards.findIndex((s) => s.index !== side.shard && s.slice.rtpMin <= peerPort && peerPort <= s.slice.rtpMax)}`;
      shard.send({ type: 'bridge-open', id, port: side.port, token, peer, ...extra });
    });
  }
}
