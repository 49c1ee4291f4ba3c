/** What a shard reports of itself twice a second. */
export interface ShardLoad {
  /** Event-loop delay p99 over the last report interval (ms). */
  loopLagMs: number;
  /** CPU used by the shard's process over the last interval, 1 = one core. */
  cpu: number;
  sessions: number;
}

export interface AdmissionLimits {
  /** Refuse new calls on a shard whose CPU is above this (0: no limit). */
  maxCpu: number;
  /** Refuse new calls on a shard whose event-loop p99 delay is above this (0: no limit). */
  maxLoopLagMs: number;
  /** Refuse new calls on a shard holding this many (0: no limit). */
  maxSessions: number;
}

export interface Candidate {
  index: number;
  ready: boolean;
  load: ShardLoad;
}

export type Placement = { ok: true; index: number } | { ok: false; why: string };

/**
 * Shards whose CPU is within this of the least busy one count as equally busy: idle shards
 * differ by 10 points and more from timers and GC alone (measured), and a call costs well
 * under one.
 */
const CPU_BAND = 0.2;

/**
 * Picks the least-loaded shard that is ready and under every limit. CPU leads when shards
 * differ by more than a band (a call's cost is mostly CPU); within it, fewer calls wins, so
 * noise in a half-second CPU reading does not pull every new call onto one shard.
 */
export function place(candidates: readonly Candidate[], limits: AdmissionLimits): Placement {
  const open: Candidate[] = [];
  const full: string[] = [];
  for (const c of candidates) {
    if (!c.ready) continue;
    const over = overLimit(c.load, limits);
    if (over) full.push(`shard ${c.index}: ${over}`);
    else open.push(c);
  }
  if (open.length === 0) return { ok: false, why: full.length === 0 ? 'no media shard is ready' : `every media shard is above its load limit (${full.join('; ')})` };
  const leastCpu = Math.min(...open.map((c) => c.load.cpu));
  let best: Candidate | null = null;
  for (const c of open) {
    if (c.load.cpu > leastCpu + CPU_BAND) continue;
    if (!best || c.load.sessions < best.load.sessions || (c.load.sessions === best.load.sessions && c.load.cpu < best.load.cpu)) best = c;
  }
  return { ok: true, index: best!.index };
}

/**
 * Calls a shard holding the request's client connection may carry beyond the least-loaded
 * one and still be chosen: a few, or a tenth more, so one connection's calls still spread.
 */
const NEAR_SLACK_CALLS = 2;
const NEAR_SLACK_RATIO = 0.1;

/**
 * `place`, but a shard that holds the client's connection wins while it is about as loaded as
 * the best: its requests are then served where they arrive, with nothing relayed between
 * processes. It loses once it is a CPU band or a tenth of the calls ahead, so the calls of a
 * single connection still spread (the rest relayed).
 */
export function placeNear(candidates: readonly Candidate[], limits: AdmissionLimits, near: number | undefined): Placement {
  const best = place(candidates, limits);
  if (!best.ok || near === undefined || near === best.index) return best;
  const here = candidates.find((c) => c.index === near);
  const least = candidates.find((c) => c.index === best.index)!;
  if (!here?.ready || overLimit(here.load, limits)) return best;
  const slack = Math.max(NEAR_SLACK_CALLS, Math.ceil(least.load.sessions * NEAR_SLACK_RATIO));
  if (here.load.cpu > least.load.cpu + CPU_BAND || here.load.sessions > least.load.sessions + slack) return best;
  return { ok: true, index: near };
}

function overLimit(l: ShardLoad, limits: AdmissionLimits): string | null {
  if (limits.maxCpu > 0 && l.cpu > limits.maxCpu) return `CPU ${(l.cpu * 100).toFixed(0)}% > ${(limits.maxCpu * 100).toFixed(0)}%`;
  if (limits.maxLoopLagMs > 0 && l.loopLagMs > limits.maxLoopLagMs) return `event-loop delay ${l.loopLagMs.toFixed(1)} ms > ${limits.maxLoopLagMs} ms`;
  if (limits.maxSessions > 0 && l.sessions >= limits.maxSessions) return `${l.sessions} calls (limit ${limits.maxSessions})`;
  return null;
}
