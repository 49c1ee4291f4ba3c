import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePortRun } from '../helpers/ports.ts';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually } from '../helpers/grpc-client.ts';
import { connectSignaling, request, type SignalingSocket } from '../helpers/signaling-client.ts';
import type { Ack, JoinResponse, TransportOptions } from '../../src/signaling/contract.ts';
import { assertNothingLeft, debugRooms } from './signaling-fixtures.ts';

interface Token {
  token: string;
}

/** A service with two workers, so where a room lands (and what the pool counts) shows in the port it offers. */
function twoWorkerService(env: Record<string, string> = {}): { svc: () => RunningService; client: () => TestClient; webRtcPort: number; connect: () => Promise<SignalingSocket>; token: (room: string) => Promise<string> } {
  let svc: RunningService;
  let client: TestClient;
  const sockets: SignalingSocket[] = [];
  let webRtcPort = 0;
  before(async () => {
    webRtcPort = await freePortRun(2);
    svc = await startService({ env: { MEDIASOUP_NUM_WORKERS: '2', RTP_SERVICE_PORT_MIN: '37000', RTP_SERVICE_PORT_MAX: '37099', WEBRTC_PORT: String(webRtcPort), ...env } });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    client?.close();
    await svc?.stop('SIGKILL');
  });
  return {
    svc: () => svc,
    client: () => client,
    get webRtcPort() {
      return webRtcPort;
    },
    connect: async () => {
      const s = await connectSignaling(svc.url(''));
      sockets.push(s);
      return s;
    },
    token: async (room) => {
      const r = await client.media_<Token>('CreateRoomToken', { room_id: room, participant: 'tester' });
      assert.equal(r.error, undefined, r.error?.details);
      return r.response!.token;
    },
  };
}

/** The worker a joined socket's room is on, read from the port of the transport it is offered. */
async function workerPort(s: SignalingSocket): Promise<number> {
  const t = await request<TransportOptions>(s, 'createTransport', { direction: 'recv' });
  assert.ok(t.ok, JSON.stringify(t));
  return t.data.iceCandidates[0]!.port;
}

describe('rooms: opening and closing', () => {
  const h = twoWorkerService();

  test('a join abandoned while its room is being created leaves no room open', async () => {
    for (let i = 0; i < 5; i++) {
      const s = await h.connect();
      s.emit('join', { roomId: `abandoned-${i}`, token: await h.token(`abandoned-${i}`) }, () => undefined);
      s.disconnect();
    }
    await assertNothingLeft(h.svc());
  });

  test('an abandoned join does not close the room another participant joined meanwhile', async () => {
    const room = 'abandoned-shared';
    const [gone, stays] = [await h.connect(), await h.connect()];
    const [t1, t2] = [await h.token(room), await h.token(room)];
    gone.emit('join', { roomId: room, token: t1 }, () => undefined);
    const joined = request<JoinResponse>(stays, 'join', { roomId: room, token: t2 });
    gone.disconnect();
    const j = await joined;
    assert.ok(j.ok, JSON.stringify(j));
    assert.ok((await request(stays, 'createTransport', { direction: 'send' })).ok, 'the room is still open for the one who stayed');
    const d = await debugRooms(h.svc());
    assert.deepEqual(d.rooms.map((r) => [r.id, r.browsers]), [[room, 1]]);
    stays.disconnect();
    await assertNothingLeft(h.svc());
  });

  test('rooms opened at the same moment are spread over the workers', async () => {
    const [a, b] = [await h.connect(), await h.connect()];
    const [ta, tb] = [await h.token('spread-a'), await h.token('spread-b')];
    const [ja, jb] = await Promise.all([request(a, 'join', { roomId: 'spread-a', token: ta }), request(b, 'join', { roomId: 'spread-b', token: tb })]);
    assert.ok(ja.ok && jb.ok);
    const ports = [await workerPort(a), await workerPort(b)].sort();
    assert.deepEqual(ports, [h.webRtcPort, h.webRtcPort + 1], 'one room per worker');
    assert.deepEqual((await debugRooms(h.svc())).workers.map((w) => w.load), [1, 1]);
    a.disconnect();
    b.disconnect();
    await assertNothingLeft(h.svc());
  });

  test('a call that ends while its room is being created: the joiner is told and no room stays open', async (t) => {
    const outcomes: string[] = [];
    for (let i = 0; i < 16; i++) {
      const callId = `ending-${process.pid}-${i}`;
      const alloc = await h.client().media_<{ rtp_port: number }>('AllocatePort', { call_id: callId });
      assert.equal(alloc.error, undefined, alloc.error?.details);
      const token = await h.token(callId);
      const s = await h.connect();
      const closed = new Promise<string>((resolve) => {
        s.once('roomClosed', (p) => resolve(p.reason));
        s.once('disconnect', () => resolve('disconnected'));
      });
      const joined = request<JoinResponse>(s, 'join', { roomId: callId, token });
      // The hang-up lands at a different step of the room's set-up each time round.
      if (i % 4 !== 0) await sleep(Math.floor(i / 4));
      await h.client().media_('ReleasePort', { rtp_port: alloc.response!.rtp_port });
      const ack: Ack<JoinResponse> = await joined;
      if (ack.ok) {
        const why = await Promise.race([closed, sleep(5000).then(() => 'still open')]);
        assert.notEqual(why, 'still open', `attempt ${i}: the joiner of an ended call is still in its room`);
        outcomes.push('joined, then closed');
      } else {
        assert.equal(ack.error.code, 'not_found', JSON.stringify(ack));
        assert.match(ack.error.message, /has ended/);
        outcomes.push('refused');
      }
      s.disconnect();
    }
    await assertNothingLeft(h.svc());
    t.diagnostic(outcomes.join(', '));
  });
});
