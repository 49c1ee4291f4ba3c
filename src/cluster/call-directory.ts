import type { CallSnapshot } from '../sessions/call-snapshot.ts';
import type { CallEntry } from './messages.ts';

/** How long a placement waits for its shard to report the call before it is forgotten. */
const PENDING_MS = 30_000;

interface Live {
  shard: number;
  entry: CallEntry;
  snapshot: CallSnapshot | null;
  /** Its shard died; the call waits for the restarted process to carry it on. */
  restoring: boolean;
}

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
  readonly #calls = new Map<string, Live>();
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

  /** Whether a live call (not one waiting for its shard) holds this port. */
  hasPort(port: number): boolean {
    for (const c of this.#calls.values()) if (c.entry.port === port && !c.restoring) return true;
    return false;
  }

  /** The live call on a port, by id. */
  callAt(port: number): string | undefined {
    for (const [id, c] of this.#calls) if (c.entry.port === port && !c.restoring) return id;
    return undefined;
  }

  entryOf(callId: string): CallEntry | undefined {
    return this.#calls.get(callId)?.entry;
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

  opened(shard: number, entry: CallEntry, snapshot: CallSnapshot | null = null): void {
    this.#calls.set(entry.callId, { shard, entry, snapshot, restoring: false });
    this.#pending.delete(entry.callId);
  }

  /** The latest snapshots a shard sent of its calls. */
  refresh(shard: number, snapshots: readonly CallSnapshot[]): void {
    for (const snap of snapshots) {
      const c = this.#calls.get(snap.callId);
      if (c && c.shard === shard && !c.restoring) c.snapshot = snap;
    }
  }

  /** A shard died: its calls wait for its next process, which is handed their snapshots. */
  suspend(shard: number): CallSnapshot[] {
    const snaps: CallSnapshot[] = [];
    for (const c of this.#calls.values()) {
      if (c.shard !== shard) continue;
      c.restoring = true;
      if (c.snapshot) snaps.push(c.snapshot);
    }
    for (const [id, p] of this.#pending) if (p.shard === shard) this.#pending.delete(id);
    return snaps;
  }

  /** The snapshots of a shard's calls that wait to be carried on. */
  waiting(shard: number): CallSnapshot[] {
    const out: CallSnapshot[] = [];
    for (const c of this.#calls.values()) if (c.shard === shard && c.restoring && c.snapshot) out.push(c.snapshot);
    return out;
  }

  /** The restarted shard is up: calls it did not carry on are gone. */
  unconfirmed(shard: number): CallEntry[] {
    const lost: CallEntry[] = [];
    for (const [id, c] of this.#calls) {
      if (c.shard !== shard || !c.restoring) continue;
      lost.push(c.entry);
      this.#calls.delete(id);
    }
    return lost;
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
