import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { runToExit, startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually } from '../helpers/grpc-client.ts';
import { RtpPeer } from '../helpers/rtp-peer.ts';
import { dominantHz, tone } from '../helpers/audio.ts';
import { connectSignaling, request } from '../helpers/signaling-client.ts';
import type { JoinResponse } from '../../src/signaling/contract.ts';

type Stream = grpc.ClientReadableStream<Record<string, unknown>>;
type Duplex = grpc.ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;

const scratch = mkdtempSync(join(tmpdir(), 'instances-'));

/** A database of its own on the machine's Redis, emptied first: no keys of other runs. */
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/7';
const A = { min: 34000, max: 34199 };
const B = { min: 34200, max: 34399 };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const instanceEnv = (id: string, range: { min: number; max: number }): Record<string, string> => ({
  MEDIA_SHARDS: '2',
  MEDIASOUP_NUM_WORKERS: '2',
  REDIS_URL,
  INSTANCE_ID: id,
  INSTANCE_TTL_SECONDS: '3',
  RTP_SERVICE_PORT_MIN: String(range.min),
  RTP_SERVICE_PORT_MAX: String(range.max),
  SIGNALING_TOKEN_SECRET: 'a-secret-the-instances-share-0123456789',
  LOG_LEVEL: 'info',
  // One owner per spool: each instance has its own.
  RECORDING_SPOOL_DIR: join(scratch, `${id}-spool`),
  RECORDING_FILE_ROOT: join(scratch, 'recordings'),
  ADMISSION_MAX_CPU: '0',
  ADMISSION_MAX_LOOP_LAG_MS: '0',
});

describe('two instances of two shards each, one Redis', () => {
  let a: RunningService;
  let b: RunningService;
  let ca: TestClient;
  let cb: TestClient;
  const peers: RtpPeer[] = [];
  let n = 0;
  const newCallId = (): string => `instances-${process.pid}-${++n}@test`;
  const inRange = (port: number, r: { min: number; max: number }): boolean => port >= r.min && port <= r.max;

  before(async () => {
    const redis = new Redis(REDIS_URL);
    await redis.flushdb();
    redis.disconnect();
    a = await startService({ env: instanceEnv('instance-a', A) });
    b = await startService({ env: instanceEnv('instance-b', B) });
    ca = new TestClient(a.grpcPort);
    cb = new TestClient(b.grpcPort);
  });
  after(async () => {
    for (const p of peers) p.close();
    ca.close();
    cb.close();
    for (const s of [a, b]) if (s.proc.exitCode === null) await s.stop('SIGKILL');
  });

  test('a call allocated on A is served through B: retry, prompt, fork, TTS, recording, release', async () => {
    const id = newCallId();
    const first = await ca.media_<{ rtp_port: number }>('AllocatePort', { call_id: id });
    assert.equal(first.error, undefined, first.error?.details);
    const port = first.response!.rtp_port;
    assert.ok(inRange(port, A));
    const retry = await cb.media_<{ rtp_port: number }>('AllocatePort', { call_id: id });
    assert.equal(retry.response?.rtp_port, port, 'a retry that lands on the other instance got another port');

    const phone = await RtpPeer.open();
    peers.push(phone);
    assert.equal((await cb.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: phone.address })).error, undefined);
    const fork = (cb.media as unknown as Record<string, (r: unknown) => Stream>).RecordAudio!({ server_rtp_port: port, target_sample_rate: 16000 });
    const forked: Buffer[] = [];
    fork.on('data', (m: { audio_data: Buffer }) => forked.push(m.audio_data));
    fork.on('error', () => {});
    const rec = await cb.media_('StartRecording', { server_rtp_port: port, output_uri: 'file:///instances/' });
    assert.equal(rec.error, undefined, rec.error?.details);
    await phone.sendPcm(tone(400, 1000, 8000), port);
    await eventually(() => forked.length >= 40, 3000);
    fork.cancel();
    const fhz = dominantHz(new Int16Array(new Uint8Array(Buffer.concat(forked)).buffer), 16000);
    assert.ok(Math.abs(fhz - 400) < 20, `the fork through B heard ${fhz.toFixed(0)} Hz, not the caller's 400 Hz`);

    const tts = await new Promise<grpc.StatusObject>((resolve) => {
      const call = (cb.media as unknown as Record<string, () => Duplex>).StreamAudioToCall!();
      call.on('data', () => {});
      call.on('error', () => {});
      call.on('status', resolve);
      call.write({ call_id: id, audio_chunk: Buffer.from(tone(600, 600, 16000).buffer) });
      call.end();
    });
    assert.equal(tts.code, grpc.status.OK, tts.details);
    await eventually(() => phone.received.length >= 25, 5000);
    const hz = dominantHz(phone.decoded('PCMU'), 8000);
    assert.ok(Math.abs(hz - 600) < 30, `the phone heard ${hz.toFixed(0)} Hz, not the 600 Hz streamed through B`);

    assert.equal((await cb.media_('StopRecording', { server_rtp_port: port })).error, undefined);
    assert.equal((await cb.media_('ReleasePort', { rtp_port: port })).error, undefined);
    const gone = await cb.media_('PlayAudio', { audio_uri: 'control://stop_playback', server_rtp_port: port });
    assert.equal(gone.error?.code, grpc.status.NOT_FOUND);
    const text = await (await fetch(b.url('/metrics'))).text();
    assert.match(text, /sentiric_media_front_door_requests_total\{method="PlayAudio",outcome="forwarded_to_instance"\} [1-9]/);
  });

  test('one new call sent to both instances at once gets one port', async () => {
    for (let k = 0; k < 5; k++) {
      const id = newCallId();
      const [x, y] = await Promise.all([ca.media_<{ rtp_port: number }>('AllocatePort', { call_id: id }), cb.media_<{ rtp_port: number }>('AllocatePort', { call_id: id })]);
      assert.equal(x.error, undefined, x.error?.details);
      assert.equal(y.error, undefined, y.error?.details);
      assert.equal(x.response!.rtp_port, y.response!.rtp_port);
      await ca.media_('ReleasePort', { rtp_port: x.response!.rtp_port });
    }
  });

  test('a browser that reaches B joins the room of a call A carries', async () => {
    const id = newCallId();
    const port = (await ca.media_<{ rtp_port: number }>('AllocatePort', { call_id: id })).response!.rtp_port;
    const t = await cb.media_<{ token: string }>('CreateRoomToken', { room_id: id, participant: 'agent' });
    assert.equal(t.error, undefined, t.error?.details);
    const s = await connectSignaling(b.url(''), '/signaling', id);
    try {
      const joined = await request<JoinResponse>(s, 'join', { roomId: id, token: t.response!.token });
      assert.ok(joined.ok, JSON.stringify(joined));
      assert.equal(joined.data.callBridged, true, 'the browser did not reach the instance that carries the call');
    } finally {
      s.disconnect();
    }
    await ca.media_('ReleasePort', { rtp_port: port });
  });

  test('an instance whose RTP range overlaps a live one’s refuses to start', async () => {
    const r = await runToExit({ ...instanceEnv('instance-c', { min: 34100, max: 34299 }), MEDIA_SERVICE_GRPC_PORT: '0', MEDIA_SERVICE_METRICS_PORT: '0', MEDIA_SERVICE_GRPC_LISTEN_ADDRESS: '127.0.0.1', MEDIA_SERVICE_METRICS_LISTEN_ADDRESS: '127.0.0.1', RTP_SERVICE_LISTEN_ADDRESS: '127.0.0.1', WEBRTC_LISTEN_IP: '127.0.0.1', WEBRTC_PORT: '38990' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /overlap instance instance-[ab]/);
  });

  test('kill -9 of instance A: B reports each of its calls lost and takes every new call', async () => {
    const calls: { id: string; port: number }[] = [];
    for (let k = 0; k < 3; k++) {
      const id = newCallId();
      const r = await ca.media_<{ rtp_port: number }>('AllocatePort', { call_id: id });
      calls.push({ id, port: r.response!.rtp_port });
    }
    await a.stop('SIGKILL');
    for (const c of calls) {
      const line = await b.waitForLog((l) => l.event === 'SESSION_LOST' && l.call_id === c.id, 15_000);
      assert.equal((line.attributes as Record<string, unknown>)['instance.id'], 'instance-a');
    }
    const r = await cb.media_<{ rtp_port: number }>('AllocatePort', { call_id: calls[0]!.id });
    assert.equal(r.error, undefined, r.error?.details);
    assert.ok(inRange(r.response!.rtp_port, B), 'the lost call’s id, allocated again, was not taken by B');
    const old = await cb.media_('PlayAudio', { audio_uri: 'control://stop_playback', server_rtp_port: calls[1]!.port });
    assert.equal(old.error?.code, grpc.status.NOT_FOUND);
  });

  test('an instance killed and started again at once under its id reports the calls it left lost, once', async () => {
    const a2 = await startService({ env: instanceEnv('instance-a', A) });
    const c2 = new TestClient(a2.grpcPort);
    const ids: string[] = [];
    for (let k = 0; k < 2; k++) {
      const id = newCallId();
      assert.equal((await c2.media_('AllocatePort', { call_id: id })).error, undefined);
      ids.push(id);
    }
    c2.close();
    await sleep(300);
    await a2.stop('SIGKILL');
    const a3 = await startService({ env: instanceEnv('instance-a', A) });
    try {
      for (const id of ids) {
        await eventually(() => [...a3.lines, ...b.lines].some((l) => l.event === 'SESSION_LOST' && l.call_id === id), 15_000);
        assert.equal([...a3.lines, ...b.lines].filter((l) => l.event === 'SESSION_LOST' && l.call_id === id).length, 1, 'a lost call was reported twice');
      }
      const c3 = new TestClient(a3.grpcPort);
      const again = await c3.media_<{ rtp_port: number }>('AllocatePort', { call_id: ids[0] });
      c3.close();
      assert.equal(again.error, undefined, again.error?.details);
      assert.ok(inRange(again.response!.rtp_port, A));
    } finally {
      await a3.stop('SIGKILL');
    }
  });

  test('SIGTERM of B with a live call: new calls sent to B go to C, the live one finishes, B exits 0 and leaves', async () => {
    const C = { min: 34400, max: 34599 };
    const c = await startService({ env: instanceEnv('instance-c', C) });
    const cc = new TestClient(c.grpcPort);
    try {
      const id = newCallId();
      const live = (await cb.media_<{ rtp_port: number }>('AllocatePort', { call_id: id })).response!.rtp_port;
      assert.ok(inRange(live, B));
      // An instance that crashed a moment ago: its heartbeat has not run out, nothing answers
      // at its address, and it looks the least busy. A new call must not be lost on it.
      const redis0 = new Redis(REDIS_URL);
      const ghost = { id: 'instance-ghost', grpc: '127.0.0.1:1', http: '127.0.0.1:1', rtpMin: 34600, rtpMax: 34609, calls: -1, at: Date.now() };
      await redis0.multi().set('sentiric-media:instance:instance-ghost', JSON.stringify(ghost), 'PX', 20_000).sadd('sentiric-media:instances', 'instance-ghost').exec();
      redis0.disconnect();
      b.proc.kill('SIGTERM');
      await b.waitForLog((l) => l.event === 'SERVICE_STOPPING' && l.component === 'supervisor');
      const moved = await cb.media_<{ rtp_port: number }>('AllocatePort', { call_id: newCallId() });
      assert.equal(moved.error, undefined, moved.error?.details);
      assert.ok(inRange(moved.response!.rtp_port, C), `a new call sent to the draining B got port ${moved.response!.rtp_port}, not one of C`);
      assert.ok(b.lines.some((l) => l.event === 'FRONT_DOOR_INSTANCE_UNREACHABLE'), 'the draining B did not try the unreachable instance first');
      assert.equal((await cb.media_<{ rtp_port: number }>('AllocatePort', { call_id: id })).response?.rtp_port, live, 'the live call’s retry');
      assert.equal((await cb.media_('ReleasePort', { rtp_port: live })).error, undefined);
      assert.equal(await b.stop(), 0);
      await cc.media_('ReleasePort', { rtp_port: moved.response!.rtp_port });
      const redis = new Redis(REDIS_URL);
      const left = await redis.smembers('sentiric-media:instances');
      redis.disconnect();
      assert.ok(!left.includes('instance-b') && left.includes('instance-c'), `B did not leave the registry: ${left.join(', ')}`);
    } finally {
      cc.close();
      await c.stop('SIGKILL');
    }
  });
});
