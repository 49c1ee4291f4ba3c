import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient } from '../helpers/grpc-client.ts';
import { connectSignaling, request, type SignalingSocket } from '../helpers/signaling-client.ts';
import { RoomTokens } from '../../src/signaling/tokens.ts';
import type { JoinResponse } from '../../src/signaling/contract.ts';
import { assertNothingLeft, outcome, roomCounts } from './signaling-fixtures.ts';

const ports = (): Record<string, string> => ({ RTP_SERVICE_PORT_MIN: '37100', RTP_SERVICE_PORT_MAX: '37199' });

const demoToken = async (svc: RunningService, room: string): Promise<Response> => fetch(svc.url(`/demo/token?room=${encodeURIComponent(room)}&name=eve`));

/** The grant inside a token, read without verifying it (the test checks what the service signed). */
const grantOf = (token: string): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

describe('the web demo is off in production unless turned on', () => {
  test('ENV=production with default settings: no page, no token route, no warning', async () => {
    const svc = await startService({ env: ports() });
    try {
      assert.equal((await demoToken(svc, 'anything')).status, 404);
      assert.equal((await fetch(svc.url('/'))).status, 404);
      assert.equal(svc.lines.some((l) => l.event === 'WEB_DEMO_ENABLED'), false);
    } finally {
      await svc.stop('SIGKILL');
    }
  });

  test('ENV=development with default settings: the demo is on and the start-up log warns', async () => {
    const svc = await startService({ env: { ...ports(), ENV: 'development', LOG_FORMAT: 'json' } });
    try {
      const warned = await svc.waitForLog((l) => l.event === 'WEB_DEMO_ENABLED');
      assert.equal(warned.level, 'warn');
      assert.match(warned.message, /issues room tokens to anyone/);
      const r = await demoToken(svc, 'dev-room');
      assert.equal(r.status, 200);
      assert.equal(grantOf(((await r.json()) as { token: string }).token)['demo'], true);
    } finally {
      await svc.stop('SIGKILL');
    }
  });
});

describe('demo tokens never open a call', () => {
  let svc: RunningService;
  let client: TestClient;
  const secret = `demo-test-${process.pid}`;
  const sockets: SignalingSocket[] = [];
  const connect = async (): Promise<SignalingSocket> => {
    const s = await connectSignaling(svc.url(''));
    sockets.push(s);
    return s;
  };
  const allocate = async (callId: string): Promise<number> => {
    const r = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId });
    assert.equal(r.error, undefined, r.error?.details);
    return r.response!.rtp_port;
  };
  const platformToken = async (room: string): Promise<string> => {
    const r = await client.media_<{ token: string }>('CreateRoomToken', { room_id: room, participant: 'attendant' });
    assert.equal(r.error, undefined, r.error?.details);
    return r.response!.token;
  };
  const issuedDemoToken = async (room: string): Promise<string> => {
    const r = await demoToken(svc, room);
    assert.equal(r.status, 200);
    return ((await r.json()) as { token: string }).token;
  };

  before(async () => {
    svc = await startService({ env: { ...ports(), SIGNALING_DEMO_ENABLED: 'true', SIGNALING_TOKEN_SECRET: secret } });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    client?.close();
    await svc?.stop('SIGKILL');
  });

  test('turned on explicitly in production, the demo warns at start-up and marks its tokens', async () => {
    await svc.waitForLog((l) => l.event === 'WEB_DEMO_ENABLED');
    const grant = grantOf(await issuedDemoToken('plain-room'));
    assert.equal(grant['demo'], true);
    assert.equal(grant['call'], undefined);
  });

  test("the token route refuses a live call's id", async () => {
    const callId = `demo-call-a-${process.pid}`;
    const port = await allocate(callId);
    const r = await demoToken(svc, callId);
    assert.equal(r.status, 403);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    assert.match(((await r.json()) as { error: string }).error, /call/);
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('a demo token for a room id that later becomes a call id is refused, and opens nothing', async () => {
    const callId = `demo-call-b-${process.pid}`;
    const early = await issuedDemoToken(callId);
    const port = await allocate(callId);
    const s = await connect();
    const j = await request(s, 'join', { roomId: callId, token: early });
    assert.equal(j.ok ? null : j.error.code, 'permission_denied', outcome(j));
    assert.deepEqual(await roomCounts(svc), { gauge: 0, registry: 0, listed: 0 });
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('a demo grant is refused for a call room even when it also claims the call', async () => {
    const callId = `demo-call-c-${process.pid}`;
    const port = await allocate(callId);
    // Signed with the service's secret: what no route issues, to show join itself refuses it.
    const forged = new RoomTokens(secret).issue({ room: callId, participant: 'eve', exp: Date.now() + 60_000, demo: true, call: true });
    const s = await connect();
    const j = await request(s, 'join', { roomId: callId, token: forged });
    assert.equal(j.ok ? null : j.error.code, 'permission_denied', outcome(j));
    // The platform's token for the same call joins, bridged.
    const attendant = await connect();
    const ok = await request<JoinResponse>(attendant, 'join', { roomId: callId, token: await platformToken(callId) });
    assert.ok(ok.ok && ok.data.callBridged, outcome(ok));
    // And once the call's room exists, a demo grant still does not get in.
    const again = await request(await connect(), 'join', { roomId: callId, token: forged });
    assert.equal(again.ok ? null : again.error.code, 'permission_denied');
    await client.media_('ReleasePort', { rtp_port: port });
    await assertNothingLeft(svc);
  });

  test('a demo participant in a room whose id becomes a call is put out when the call takes the room', async () => {
    const callId = `demo-call-d-${process.pid}`;
    const token = await issuedDemoToken(callId);
    const eve = await connect();
    const j = await request<JoinResponse>(eve, 'join', { roomId: callId, token });
    assert.ok(j.ok && !j.data.callBridged, outcome(j));
    const closed = new Promise<string>((resolve) => eve.once('roomClosed', (p) => resolve(p.reason)));
    const gone = new Promise<void>((resolve) => eve.once('disconnect', () => resolve()));

    const port = await allocate(callId);
    const attendant = await connect();
    const a = await request<JoinResponse>(attendant, 'join', { roomId: callId, token: await platformToken(callId) });
    assert.ok(a.ok && a.data.callBridged, outcome(a));
    assert.ok(a.data.peers.every((p) => p.kind !== 'browser'), `nobody from the ordinary room is in the call's: ${JSON.stringify(a.data.peers)}`);
    assert.match(await closed, /call/);
    await gone;
    const back = await request(await connect(), 'join', { roomId: callId, token });
    assert.equal(back.ok ? null : back.error.code, 'permission_denied');
    await client.media_('ReleasePort', { rtp_port: port });
    await assertNothingLeft(svc);
  });
});
