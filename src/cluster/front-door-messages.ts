import type { MediaErrorCode } from '../errors/media-error.ts';
import type { RouteKey } from './route.ts';

/** Set on a front-door process: its index among the instance's front doors. */
export const FRONT_DOOR_INDEX_ENV = 'MEDIA_FRONT_DOOR_INDEX';

/**
 * A routing target as it crosses the IPC channel. What only the supervisor can do (answer a
 * request itself, place a new call elsewhere when an instance cannot be reached) stays with
 * it under `ref`, and the front door asks for it by that ref.
 */
export type WireTarget = { kind: 'shard'; index: number } | { kind: 'instance'; id: string; address: string; ref?: number } | { kind: 'answer'; ref: number };

/** What the supervisor knows and a front door needs on every request. */
export interface FrontDoorState {
  /** Each shard's private gRPC socket while it is ready. */
  sockets: (string | null)[];
  serving: boolean;
  instanceId: string;
}

export type FailureWire = { code: MediaErrorCode; message: string };

/** Supervisor -> front-door process. A `connection` message carries the accepted socket as its handle. */
export type ToFrontDoor =
  | { type: 'connection' }
  | { type: 'state'; state: FrontDoorState }
  | { type: 'drop-shard'; index: number }
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: FailureWire }
  | { type: 'metrics'; id: number };

/** Front-door process -> supervisor. */
export type FromFrontDoor =
  | { type: 'ready' }
  /** Twice a second: a front door that stops saying it is stuck. */
  | { type: 'alive' }
  | { type: 'resolve'; id: number; key: RouteKey; relayed: boolean }
  /** Run the answer the supervisor kept under `ref`; the reply is the response message. */
  | { type: 'run'; id: number; ref: number }
  /** The instance kept under `ref` cannot be reached: where does the new call go instead? */
  | { type: 'fallback'; id: number; ref: number }
  | { type: 'settled'; key: RouteKey; target: WireTarget; code: number }
  /** It stopped waiting for the answer to `id`: a call placed for it is not coming. */
  | { type: 'abandon'; id: number }
  | { type: 'connection-closed' }
  | { type: 'metrics'; id: number; text: string };

/** What a door (a front-door process, a shard holding client connections) asks or tells about its requests. */
export type DoorMessage = Extract<FromFrontDoor, { type: 'resolve' | 'run' | 'fallback' | 'settled' | 'abandon' | 'connection-closed' }>;

const TO = new Set(['connection', 'state', 'drop-shard', 'reply', 'metrics']);
const FROM = new Set(['ready', 'alive', 'abandon', 'resolve', 'run', 'fallback', 'settled', 'connection-closed', 'metrics']);

const typed = (m: unknown): string | undefined => (typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' ? (m as { type: string }).type : undefined);
export const isToFrontDoor = (m: unknown): m is ToFrontDoor => TO.has(typed(m) ?? '');
export const isFromFrontDoor = (m: unknown): m is FromFrontDoor => FROM.has(typed(m) ?? '');
const DOOR = new Set(['resolve', 'run', 'fallback', 'settled', 'abandon', 'connection-closed']);
export const isDoorMessage = (m: unknown): m is DoorMessage => DOOR.has(typed(m) ?? '');
