import type { RouteHandler } from '../http/server.ts';
import { ROOM_ID_PATTERN, type RoomTokens } from './tokens.ts';

const DEMO_TTL_MS = 3600_000;

/**
 * GET /demo/token?room=&name= issues a room token to anyone who asks: what the demo page
 * needs to join without a platform in front. Only mounted when the demo is on. Its tokens
 * are marked demo and open ordinary rooms only: a live call's room is refused here, and
 * join refuses them for any room that is or becomes a call's.
 */
export function demoTokenRoute(opts: { tokens: RoomTokens; isCallRoom: (id: string) => boolean; signalingPath: string }): RouteHandler {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/demo/token') return false;
    const json = (status: number, body: unknown): true => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(body)}\n`);
      return true;
    };
    if (req.method !== 'GET') return json(405, { error: 'use GET' });
    const room = url.searchParams.get('room') ?? '';
    const name = (url.searchParams.get('name') ?? '').trim().slice(0, 64) || 'guest';
    if (!ROOM_ID_PATTERN.test(room)) return json(400, { error: 'room: 1-128 characters of A-Z a-z 0-9 . _ : @ -' });
    if (opts.isCallRoom(room)) return json(403, { error: "room: a call's room is joined with a token from the platform, not from the demo" });
    const exp = Date.now() + DEMO_TTL_MS;
    return json(200, { token: opts.tokens.issue({ room, participant: name, exp, demo: true }), path: opts.signalingPath, roomId: room, expiresAt: exp });
  };
}
