import type { RouteHandler } from '../http/server.ts';
import type { RoomRegistry } from './room-registry.ts';

/**
 * GET /debug/rooms: each room's peers and its router's transports, producers and consumers
 * as the worker counts them, and each worker's routers next to the load the pool counts.
 * What a leak check compares against zero once every browser has gone.
 */
export function roomsDebugRoute(rooms: RoomRegistry): RouteHandler {
  return async (req, res) => {
    if (req.url !== '/debug/rooms' || req.method !== 'GET') return false;
    const body = await rooms.resources();
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(body)}\n`);
    return true;
  };
}
