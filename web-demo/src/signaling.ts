/**
 * The socket.io side of the demo: a typed request/ack wrapper over the service's contract
 * (src/signaling/contract.ts, the same module the server is checked against).
 */
import { io, type Socket } from 'socket.io-client';
import type { Ack, ClientToServerEvents, ServerToClientEvents, SignalingErrorCode } from '../../src/signaling/contract.ts';

export type SignalingSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
export type RequestName = keyof ClientToServerEvents;
export type RequestPayload<K extends RequestName> = Parameters<ClientToServerEvents[K]>[0];
export type RequestResult<K extends RequestName> = Parameters<ClientToServerEvents[K]>[1] extends (res: Ack<infer R>) => void ? R : never;

/** A request the server refused (an ack with ok:false), or one that got no ack in time. */
export class SignalingError extends Error {
  readonly request: RequestName;
  readonly code: SignalingErrorCode | 'timeout' | 'disconnected';
  /** The server's message (or what happened), without the request name and code. */
  readonly detail: string;

  constructor(request: RequestName, code: SignalingErrorCode | 'timeout' | 'disconnected', detail: string) {
    super(`${request}: ${code}: ${detail}`);
    this.name = 'SignalingError';
    this.request = request;
    this.code = code;
    this.detail = detail;
  }
}

/** What GET /demo/token answers. */
export interface DemoToken {
  token: string;
  path: string;
}

export async function fetchDemoToken(room: string, name: string): Promise<DemoToken> {
  const res = await fetch(`/demo/token?${new URLSearchParams({ room, name }).toString()}`, { cache: 'no-store' });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const why = body && typeof body === 'object' && 'error' in body ? describe((body as { error: unknown }).error) : text.trim() || res.statusText;
    throw new Error(`token request refused (HTTP ${res.status}): ${why}`);
  }
  const t = body as Partial<DemoToken> | undefined;
  if (!t || typeof t.token !== 'string') throw new Error('the token response has no token');
  // The page also carries the path (a <meta> the service adds) for a response without one.
  const path = typeof t.path === 'string' ? t.path : document.querySelector<HTMLMetaElement>('meta[name="signaling-path"]')?.content;
  return { token: t.token, path: path || '/signaling' };
}

function describe(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && 'message' in e) return String((e as { message: unknown }).message);
  return JSON.stringify(e);
}

export function connectSignaling(path: string, roomId: string): SignalingSocket {
  // Same origin as the page; socket.io reconnects by itself after a network drop. The room in
  // the query lets an instance of several media shards send the socket to the room's one.
  return io({ path, autoConnect: true, reconnectionDelayMax: 5_000, query: { room: roomId } });
}

/** Sends one request and resolves with the ack's data; rejects with a SignalingError. */
export async function request<K extends RequestName>(socket: SignalingSocket, name: K, payload: RequestPayload<K>, timeoutMs = 10_000): Promise<RequestResult<K>> {
  if (!socket.connected) throw new SignalingError(name, 'disconnected', 'not connected to the service');
  // socket.io's emit typing cannot follow a generic event name: the contract types both ends.
  const timed = socket.timeout(timeoutMs);
  const emit = timed.emitWithAck as unknown as (n: K, p: RequestPayload<K>) => Promise<Ack<RequestResult<K>>>;
  let ack: Ack<RequestResult<K>>;
  try {
    ack = await emit.call(timed, name, payload);
  } catch {
    throw new SignalingError(name, socket.connected ? 'timeout' : 'disconnected', `no answer within ${timeoutMs} ms`);
  }
  if (!ack || typeof ack !== 'object' || typeof ack.ok !== 'boolean') throw new SignalingError(name, 'internal', 'malformed ack');
  if (!ack.ok) throw new SignalingError(name, ack.error.code, ack.error.message);
  return ack.data;
}
