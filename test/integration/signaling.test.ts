import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { freePortRun } from '../helpers/ports.ts';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually, metricValue } from '../helpers/grpc-client.ts';
import { connectSignaling, request, type SignalingSocket } from '../helpers/signaling-client.ts';
import type { JoinResponse, TransportOptions } from '../../src/signaling/contract.ts';

interface Token {
  token: string;
  signaling_path: string;
  expires_at_unix_ms: string;
}

describe('socket.io signaling', () => {
  let svc: RunningService;
  let client: TestClient;
  const sockets: SignalingSocket[] = [];
  let webRtcPort = 0;
  const connect = async (): Promise<SignalingSocket> => {
    const s = await connectSignaling(svc.url(''));
    sockets.push(s);
    return s;
  };
  const token = async (room: string, participant = 'tester'): Promise<string> => {
    const r = await client.media_<Token>('CreateRoomToken', { room_id: room, participant });
    assert.equal(r.error, undefined, r.error?.details);
    assert.equal(r.response!.signaling_path, '/signaling');
    return r.response!.token;
  };
  const rooms = async (): Promise<number> => {
    const text = await (await fetch(svc.url('/metrics'))).text();
    return (metricValue(text, 'sentiric_media_rooms', { call: 'false' }) ?? 0) + (metricValue(text, 'sentiric_media_rooms', { call: 'true' }) ?? 0);
  };

  before(async () => {
    webRtcPort = await freePortRun(1);
    svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '38400', RTP_SERVICE_PORT_MAX: '38499', WEBRTC_PORT: String(webRtcPort) } });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    client.close();
    await svc.stop('SIGKILL');
  });

  test('socket.io loads when the first browser connects, not at start; an upgrade on no known path is refused at once', async () => {
    const loaded = (): number => svc.lines.filter((l) => l.event === 'SIGNALING_LOADED').length;
    assert.equal(loaded(), 0);
    // Its metric is there from the start all the same.
    assert.match(await (await fetch(svc.url('/metrics'))).text(), /^# TYPE sentiric_media_signaling_requests_total counter$/m);
    const raw = tcpConnect(svc.httpPort, '127.0.0.1');
    raw.end('GET /nowhere HTTP/1.1\r\nhost: media\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    let answer = '';
    raw.on('data', (d: Buffer) => (answer += d.toString()));
    await once(raw, 'close');
    assert.match(answer, /^HTTP\/1\.1 404 /);
    await connect();
    await svc.waitForLog((l) => l.event === 'SIGNALING_LOADED');
    await connect();
    assert.equal(loaded(), 1);
  });

  test('a token joins its room and a transport is offered on the WebRTC server port', async () => {
    const s = await connect();
    const joined = await request<JoinResponse>(s, 'join', { roomId: 'room-a', token: await token('room-a', 'alice') });
    assert.ok(joined.ok, JSON.stringify(joined));
    assert.equal(joined.data.roomId, 'room-a');
    assert.equal(joined.data.callBridged, false);
    assert.ok(joined.data.routerRtpCapabilities.codecs?.some((c) => c.mimeType === 'audio/opus'));
    const t = await request<TransportOptions>(s, 'createTransport', { direction: 'send' });
    assert.ok(t.ok, JSON.stringify(t));
    const udp = t.data.iceCandidates.find((c) => c.protocol === 'udp');
    assert.equal(udp?.port, webRtcPort);
    assert.equal(udp?.ip ?? (udp as { address?: string } | undefined)?.address, '127.0.0.1');
    assert.ok(t.data.iceCandidates.some((c) => c.protocol === 'tcp' && c.port === webRtcPort));

    // A second participant is announced to the first.
    const seen = new Promise<{ displayName: string }>((r) => s.once('peerJoined', r));
    const s2 = await connect();
    const j2 = await request<JoinResponse>(s2, 'join', { roomId: 'room-a', token: await token('room-a', 'bob') });
    assert.ok(j2.ok);
    assert.equal((await seen).displayName, 'bob');
    assert.deepEqual(j2.data.peers.map((p) => p.displayName), ['alice']);
  });

  test('a token for another room, a forged or malformed token are refused', async () => {
    const s = await connect();
    const other = await request(s, 'join', { roomId: 'room-b', token: await token('room-c') });
    assert.deepEqual(other.ok ? null : other.error.code, 'permission_denied');
    const real = await token('room-b');
    const forged = `${real.slice(0, -4)}${real.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    const bad = await request(s, 'join', { roomId: 'room-b', token: forged });
    assert.equal(bad.ok ? null : bad.error.code, 'unauthenticated');
    const garbage = await request(s, 'join', { roomId: 'room-b', token: 'not a token' });
    assert.equal(garbage.ok ? null : garbage.error.code, 'unauthenticated');
    // The same connection can still join with a good token.
    assert.ok((await request(s, 'join', { roomId: 'room-b', token: real })).ok);
  });

  test('malformed requests get error acks and the server keeps serving', async () => {
    const s = await connect();
    const early = await request(s, 'createTransport', { direction: 'send' });
    assert.equal(early.ok ? null : early.error.code, 'failed_precondition');
    const noToken = await request(s, 'join', { roomId: 'room-d' });
    assert.equal(noToken.ok ? null : noToken.error.code, 'invalid_argument');
    assert.match(noToken.ok ? '' : noToken.error.message, /token/);
    const notObject = await request(s, 'join', 'hello');
    assert.equal(notObject.ok ? null : notObject.error.code, 'invalid_argument');
    const unknown = await request(s, 'selfDestruct', {});
    assert.equal(unknown.ok ? null : unknown.error.code, 'invalid_argument');
    (s as unknown as { emit(e: string, p: unknown): void }).emit('join', { roomId: 'room-d' }); // no ack: ignored
    assert.ok((await request(s, 'join', { roomId: 'room-d', token: await token('room-d') })).ok);
    const dir = await request(s, 'createTransport', { direction: 'sideways' });
    assert.equal(dir.ok ? null : dir.error.code, 'invalid_argument');
    const t = await request<TransportOptions>(s, 'createTransport', { direction: 'send' });
    assert.ok(t.ok);
    const produce = await request(s, 'produce', { transportId: t.data.id, kind: 'audio', rtpParameters: { codecs: 'opus' } });
    assert.equal(produce.ok ? null : produce.error.code, 'invalid_argument');
    const conn = await request(s, 'connectTransport', { transportId: t.data.id, dtlsParameters: { fingerprints: 7 } });
    assert.equal(conn.ok ? null : conn.error.code, 'invalid_argument');
    const consume = await request(s, 'consume', { transportId: t.data.id, producerId: 'nope', rtpCapabilities: {} });
    assert.equal(consume.ok ? null : consume.error.code, 'not_found');
    const twice = await request(s, 'join', { roomId: 'room-d', token: await token('room-d') });
    assert.equal(twice.ok ? null : twice.error.code, 'failed_precondition');
    assert.equal((await fetch(svc.url('/healthz'))).status, 200);
    assert.equal(svc.proc.exitCode, null);
    const text = await (await fetch(svc.url('/metrics'))).text();
    assert.ok((metricValue(text, 'sentiric_media_signaling_requests_total', { request: 'produce', code: 'invalid_argument' }) ?? 0) >= 1);
  });

  test('a socket that disconnects leaves nothing behind', async () => {
    for (const s of sockets.splice(0)) s.disconnect();
    await eventually(async () => (await rooms()) === 0, 5000);
    const s = await connect();
    assert.ok((await request(s, 'join', { roomId: 'room-e', token: await token('room-e') })).ok);
    assert.ok((await request(s, 'createTransport', { direction: 'send' })).ok);
    assert.ok((await request(s, 'createTransport', { direction: 'recv' })).ok);
    assert.equal(await rooms(), 1);
    s.disconnect();
    await eventually(async () => (await rooms()) === 0, 5000);
    const resources = (await (await fetch(svc.url('/debug/resources'))).json()) as { rooms: number };
    assert.equal(resources.rooms, 0);
  });

  test('a worker that dies closes its rooms; the replacement takes new ones on the same port', async () => {
    const s = await connect();
    assert.ok((await request(s, 'join', { roomId: 'room-w', token: await token('room-w') })).ok);
    const closed = new Promise<{ reason: string }>((r) => s.once('roomClosed', r));
    const [pid] = execFileSync('pgrep', ['-P', String(svc.proc.pid), '-f', 'mediasoup-worker']).toString().trim().split('\n').map(Number);
    process.kill(pid!, 'SIGKILL');
    assert.match((await closed).reason, /worker died/);
    await svc.waitForLog((l) => l.event === 'WORKER_REPLACED', 10_000);
    const s2 = await connect();
    assert.ok((await request(s2, 'join', { roomId: 'room-w', token: await token('room-w') })).ok);
    const t = await request<TransportOptions>(s2, 'createTransport', { direction: 'recv' });
    assert.ok(t.ok, JSON.stringify(t));
    assert.equal(t.data.iceCandidates[0]?.port, webRtcPort);
    s2.disconnect();
    await eventually(async () => (await rooms()) === 0, 5000);
  });

  test('a call room has the phone in it and closes when the call is released', async () => {
    const callId = `sig-call-${process.pid}`;
    const alloc = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId });
    assert.equal(alloc.error, undefined);
    const s = await connect();
    const j = await request<JoinResponse>(s, 'join', { roomId: callId, token: await token(callId) });
    assert.ok(j.ok, JSON.stringify(j));
    assert.equal(j.data.callBridged, true);
    assert.ok(j.data.peers.some((p) => p.kind === 'phone'));
    assert.equal(j.data.producers.length, 1);
    const closed = new Promise<{ reason: string }>((r) => s.once('roomClosed', r));
    const gone = new Promise<void>((r) => s.once('disconnect', () => r()));
    const issuedDuringCall = await token(callId);
    await client.media_('ReleasePort', { rtp_port: alloc.response!.rtp_port });
    assert.match((await closed).reason, /call ended/);
    await gone;
    await eventually(async () => (await rooms()) === 0, 5000);
    // A token issued for the call does not open an ordinary room once the call has ended.
    const late = await request(await connect(), 'join', { roomId: callId, token: issuedDuringCall });
    assert.equal(late.ok ? null : late.error.code, 'not_found');
    assert.match(late.ok ? '' : late.error.message, /has ended/);
  });
});
