import { io, type Socket } from 'socket.io-client';
import type { Ack, ClientToServerEvents, ServerToClientEvents } from '../../src/signaling/contract.ts';

export type SignalingSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** A socket.io client on the service's signaling path, connected (websocket only); `room` routes it to that room's shard. */
export async function connectSignaling(url: string, path = '/signaling', room?: string): Promise<SignalingSocket> {
  const socket: SignalingSocket = io(url, { path, transports: ['websocket'], reconnection: false, timeout: 5000, ...(room ? { query: { room } } : {}) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return socket;
}

/** Emits a request (any name, any payload: tests send malformed ones too) and waits for its ack. */
export function request<T = unknown>(socket: SignalingSocket, event: string, payload: unknown, timeoutMs = 5000): Promise<Ack<T>> {
  return (socket.timeout(timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<Ack<T>> }).emitWithAck(event, payload);
}
