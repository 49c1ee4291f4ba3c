import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { demoTokenRoute } from '../../../src/signaling/demo-token.ts';
import { RoomTokens } from '../../../src/signaling/tokens.ts';

describe('GET /demo/token', () => {
  const tokens = new RoomTokens('s3cret');
  const calls = new Set(['call-1']);
  let server: Server;
  let base = '';

  before(async () => {
    const route = demoTokenRoute({ tokens, isCallRoom: (id) => calls.has(id), signalingPath: '/signaling' });
    server = createServer((req, res) => {
      if (!route(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('issues a demo-scoped grant for an ordinary room, never a call grant', async () => {
    const r = await fetch(`${base}/demo/token?room=lobby&name=ann`);
    assert.equal(r.status, 200);
    const body = (await r.json()) as { token: string; path: string; roomId: string };
    assert.equal(body.path, '/signaling');
    const check = tokens.verify(body.token);
    assert.ok(check.ok);
    assert.equal(check.grant.demo, true);
    assert.equal(check.grant.call, undefined);
    assert.equal(check.grant.room, 'lobby');
  });

  test("refuses a call's room with 403 and a JSON error", async () => {
    const r = await fetch(`${base}/demo/token?room=call-1`);
    assert.equal(r.status, 403);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(typeof ((await r.json()) as { error: unknown }).error, 'string');
  });

  test('refuses a malformed room id and other methods', async () => {
    assert.equal((await fetch(`${base}/demo/token?room=${'x'.repeat(200)}`)).status, 400);
    assert.equal((await fetch(`${base}/demo/token?room=a b`)).status, 400);
    assert.equal((await fetch(`${base}/demo/token?room=lobby`, { method: 'POST' })).status, 405);
  });
});
