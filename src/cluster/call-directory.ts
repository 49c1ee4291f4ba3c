import type { CallEntry } from './messages.ts';

/** How long a placement waits for its shard to report the call before it is forgotten. */
const PENDING_MS = 30_000;

interface Pending {
  shard: number;
  at: number;
}

/**
 * Which shard carries each live call of the instance. Shards report the calls they open
 * and close; a new call's placement is held here from the moment it is chosen, so a retry
 * or a concurrent duplicate of AllocatePort reaches the same shard before the call exists.
 */
export class CallDirectory {
  readonly #calls = new Map<string, { shard: number; entry: CallEntry }>();
  readonly #pending = new Map<string, Pending>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  get size(): number {
    return this.#calls.size;
  }

  /** The shard of a live or just-placed call. */
  ownerOf(callId: string): number | undefined {
    const live = this.#calls.get(callId);
    if (live) return live.shard;
    const p = this.#pending.get(callId);
    if (!p) return undefined;
    if (this.#now() - p.at > PENDING_MS) {
      this.#pending.delete(callId);
      return undefined;
    }
    return p.shard;
  }

  /** Placements not yet reported as calls, per shard: they count as load until they are. */
  pendingOn(shard: number): number {
    let n = 0;
    for (const p of this.#pending.values()) if (p.shard === shard) n++;
    return n;
  }

  /** Live calls of a shard plus placements not yet reported: what placement counts. */
  loadOn(shard: number): number {
    let n = this.pendingOn(shard);
    for (const c of this.#calls.values()) if (c.shard === shard) n++;
    return n;
  }

  placed(callId: string, shard: number): void {
    this.#pending.set(callId, { shard, at: this.#now() });
  }

  /** The AllocatePort of a placement answered; one that failed frees its placement. */
  settled(callId: string, shard: number, ok: boolean): void {
    const p = this.#pending.get(callId);
    if (p && p.shard === shard && (!ok || this.#calls.has(callId))) this.#pending.delete(callId);
  }

  opened(shard: number, entry: CallEntry): void {
    this.#calls.set(entry.callId, { shard, entry });
    this.#pending.delete(entry.callId);
  }

  closed(shard: number, callId: string): void {
    if (this.#calls.get(callId)?.shard === shard) this.#calls.delete(callId);
  }

  /** A shard died: its calls are gone. Returns them so they can be reported lost. */
  dropShard(shard: number): CallEntry[] {
    const lost: CallEntry[] = [];
    for (const [id, c] of this.#calls) {
      if (c.shard !== shard) continue;
      lost.push(c.entry);
      this.#calls.delete(id);
    }
    for (const [id, p] of this.#pending) if (p.shard === shard) this.#pending.delete(id);
    return lost;
  }
}
