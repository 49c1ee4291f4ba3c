import type { CallSnapshot } from '../sessions/call-snapshot.ts';
import type { ShardLoad } from './placement.ts';

/** What a shard tells its supervisor over the IPC channel. */
export type ShardMessage =
  /** Started: which calls of this slice should it carry on? */
  | { type: 'hello' }
  | { type: 'ready'; grpcSocket: string; httpSocket: string }
  | { type: 'load'; load: ShardLoad }
  /** Every live call's snapshot, twice a second. */
  | { type: 'snapshots'; calls: CallSnapshot[] }
  | { type: 'call-opened'; call: CallEntry; snapshot: CallSnapshot }
  | { type: 'call-closed'; callId: string; port: number }
  /** A call it was asked to carry on could not be. */
  | { type: 'call-lost'; callId: string; port: number; reason: string };

/** What the supervisor tells a shard. */
export type SupervisorMessage = { type: 'restore'; calls: CallSnapshot[] };

/** A live call as the instance's directory knows it. */
export interface CallEntry {
  callId: string;
  port: number;
  traceId: string;
  tenantId: string;
}

/** Set by the supervisor in a shard's environment; never configured by hand. */
export const SHARD_INDEX_ENV = 'MEDIA_SHARD_INDEX';
export const SHARD_RUNTIME_DIR_ENV = 'MEDIA_SHARD_RUNTIME_DIR';

export function isShardMessage(m: unknown): m is ShardMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}
