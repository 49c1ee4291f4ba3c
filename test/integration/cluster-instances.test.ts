import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePortRun } from '../helpers/ports.ts';
import { runToExit, startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually } from '../helpers/grpc-client.ts';
import { RtpPeer } from '../helpers/rtp-peer.ts';
import { dominantHz, tone, toneDbfs } from '../helpers/audio.ts';
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
    // B's client connections are served by a front-door process: what it relays to A, and the
    // new calls it places elsewhere when A is gone, are asked of B's supervisor over IPC.
    b = await startService({ env: { ...instanceEnv('instance-b', B), MEDIA_FRONT_DOORS: '1' } });
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
    // Relayed by B's front-door process, whose samples say which one it is.
    assert.match(text, /sentiric_media_front_door_requests_total\{method="PlayAudio",outcome="forwarded_to_instance",front_door="0"\} [1-9]/);
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

  /** A call on an instance's client with a phone of its own that hears it. */
  const callOn = async (client: TestClient, range: { min: number; max: number }): Promise<{ id: string; port: number; phone: RtpPeer }> => {
    const id = newCallId();
    const r = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: id });
    assert.equal(r.error, undefined, r.error?.details);
    assert.ok(inRange(r.response!.rtp_port, range));
    const phone = await RtpPeer.open();
    peers.push(phone);
    assert.equal((await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: r.response!.rtp_port, rtp_target_addr: phone.address })).error, undefined);
    return { id, port: r.response!.rtp_port, phone };
  };
  /** Each frequency's level in the middle of what a phone heard. */
  const heard = (phone: RtpPeer, freqs: number[]): number[] => {
    const pcm = phone.decoded('PCMU');
    const mid = pcm.subarray(Math.floor(pcm.length * 0.3), Math.floor(pcm.length * 0.7));
    return freqs.map((f) => toneDbfs(mid, 8000, f));
  };

  test('BridgeCalls of a call on A and a call on B, asked of either: each phone hears the other; unbridge and a call’s end free both', async () => {
    const x = await callOn(ca, A);
    const y = await callOn(cb, B);
    // Asked of B, about A's call first: B relays it to A, whose front door opens a half on each instance.
    const bridged = await cb.media_('BridgeCalls', { server_rtp_port_a: x.port, server_rtp_port_b: y.port });
    assert.equal(bridged.error, undefined, bridged.error?.details);
    const busy = await ca.media_('BridgeCalls', { server_rtp_port_a: y.port, server_rtp_port_b: x.port });
    assert.equal(busy.error?.code, grpc.status.FAILED_PRECONDITION, 'a call bridged across instances was bridged again');
    await Promise.all([x.phone.sendPcm(tone(400, 1500, 8000, 6000), x.port), y.phone.sendPcm(tone(700, 1500, 8000, 6000), y.port)]);
    await sleep(200);
    const [xOwn, xOther] = heard(x.phone, [400, 700]);
    const [yOther, yOwn] = heard(y.phone, [400, 700]);
    assert.ok(xOther! > -25 && xOwn! < -40, `A's phone heard B's 700 Hz at ${xOther!.toFixed(1)} and its own 400 Hz at ${xOwn!.toFixed(1)} dBFS`);
    assert.ok(yOther! > -25 && yOwn! < -40, `B's phone heard A's 400 Hz at ${yOther!.toFixed(1)} and its own 700 Hz at ${yOwn!.toFixed(1)} dBFS`);
    const bridgedLine = a.lines.find((l) => l.event === 'BRIDGE_CREATED' && (l.attributes as Record<string, unknown>)['rtp.port'] === x.port);
    assert.match(String(bridgedLine?.message), /instance-b/);

    // Unbridged on B's side: A's half closes too, and the two can be bridged again (this time asked of A, about B's call first).
    assert.equal((await cb.media_('UnbridgeCalls', { server_rtp_port: y.port })).error, undefined);
    await a.waitForLog((l) => l.event === 'BRIDGE_CLOSED' && (l.attributes as Record<string, unknown>)['rtp.port'] === x.port, 5000);
    assert.equal((await ca.media_('BridgeCalls', { server_rtp_port_a: y.port, server_rtp_port_b: x.port })).error, undefined, 'unbridged calls could not be bridged again');
    // A's call ends: B's half closes with it, and B's call is free.
    const closedOnB = (): number => b.lines.filter((l) => l.event === 'BRIDGE_CLOSED' && (l.attributes as Record<string, unknown>)['rtp.port'] === y.port).length;
    const before = closedOnB();
    assert.equal((await ca.media_('ReleasePort', { rtp_port: x.port })).error, undefined);
    await eventually(() => closedOnB() > before, 5000);
    const z = await callOn(ca, A);
    // A port of B with no call: B says so, and A's call is not left busy.
    const missing = await ca.media_('BridgeCalls', { server_rtp_port_a: z.port, server_rtp_port_b: B.max - 1 });
    assert.equal(missing.error?.code, grpc.status.NOT_FOUND, missing.error?.details);
    assert.match(missing.error!.details, new RegExp(`port ${B.max - 1}`));
    assert.equal((await cb.media_('BridgeCalls', { server_rtp_port_a: y.port, server_rtp_port_b: z.port })).error, undefined, 'the call whose peer ended, or the one a bridge was refused for, stayed busy');
    await ca.media_('ReleasePort', { rtp_port: z.port });
    await cb.media_('ReleasePort', { rtp_port: y.port });
  });

  test('a bridge across instances is made again when the shard carrying either call is killed and comes back', async () => {
    const x = await callOn(ca, A);
    const y = await callOn(cb, B);
    assert.equal((await ca.media_('BridgeCalls', { server_rtp_port_a: x.port, server_rtp_port_b: y.port })).error, undefined);
    const talk = async (when: string): Promise<void> => {
      x.phone.received.length = 0;
      y.phone.received.length = 0;
      await Promise.all([x.phone.sendPcm(tone(400, 1500, 8000, 6000), x.port), y.phone.sendPcm(tone(700, 1500, 8000, 6000), y.port)]);
      await sleep(200);
      const [xOwn, xOther] = heard(x.phone, [400, 700]);
      const [yOther, yOwn] = heard(y.phone, [400, 700]);
      assert.ok(xOther! > -25 && xOwn! < -40, `${when}: A's phone heard B's 700 Hz at ${xOther!.toFixed(1)} and its own 400 Hz at ${xOwn!.toFixed(1)} dBFS`);
      assert.ok(yOther! > -25 && yOwn! < -40, `${when}: B's phone heard A's 400 Hz at ${yOther!.toFixed(1)} and its own 700 Hz at ${yOwn!.toFixed(1)} dBFS`);
    };
    await talk('before any crash');
    const attr = (l: { attributes?: unknown }, k: string): unknown => (l.attributes as Record<string, unknown> | undefined)?.[k];
    const bridgesOf = (svc: RunningService, port: number): number => svc.lines.filter((l) => l.event === 'BRIDGE_CREATED' && attr(l, 'rtp.port') === port).length;
    // A made the bridge. First the shard of the other instance dies (B's, carrying y), then A's own (carrying x).
    for (const [svc, call, range, who] of [[b, y, B, 'B'], [a, x, A, 'A']] as const) {
      const shard = call.port < range.min + (range.max - range.min + 1) / 2 ? 0 : 1;
      const ready = (): number => svc.lines.filter((l) => l.event === 'SHARD_READY' && attr(l, 'shard.index') === shard).length;
      const [readyBefore, bridgedBefore] = [ready(), bridgesOf(svc, call.port)];
      const debug = (await (await fetch(svc.url('/debug/resources'))).json()) as { shards: { index: number; pid: number }[] };
      process.kill(debug.shards.find((s) => s.index === shard)!.pid, 'SIGKILL');
      await eventually(() => ready() > readyBefore, 20_000);
      // The restarted shard carries the call on and its half of the bridge is opened again.
      await eventually(() => bridgesOf(svc, call.port) > bridgedBefore, 10_000);
      await talk(`after instance ${who}'s shard ${shard} was killed`);
    }
    assert.equal((await ca.media_('ReleasePort', { rtp_port: x.port })).error, undefined);
    assert.equal((await cb.media_('ReleasePort', { rtp_port: y.port })).error, undefined);
  });

  test('a conference lives on the instance that made it: calls of A and B in it, asked of either; kick and end reach the right instance', async () => {
    const conf = `across-${process.pid}`;
    assert.equal((await ca.media_('CreateConference', { conference_id: conf })).error, undefined);
    const dup = await cb.media_('CreateConference', { conference_id: conf });
    assert.equal(dup.error?.code, grpc.status.ALREADY_EXISTS, 'B made a second conference of the same id');
    const x = await callOn(ca, A);
    const y = await callOn(cb, B);
    const w = await callOn(cb, B);
    // Through B, by port, a call of A; through A, by call id, calls of B.
    for (const [client, req, call] of [
      [cb, { server_rtp_port: x.port }, x],
      [ca, { call_id: y.id }, y],
      [cb, { server_rtp_port: w.port }, w],
    ] as const) {
      const r = await client.media_<{ participant_id: string; call_id: string }>('AddToConference', { conference_id: conf, ...req });
      assert.equal(r.error, undefined, r.error?.details);
      assert.deepEqual([r.response?.participant_id, r.response?.call_id], [call.id, call.id]);
    }
    const again = await cb.media_('AddToConference', { conference_id: conf, call_id: y.id });
    assert.equal(again.error?.code, grpc.status.FAILED_PRECONDITION, 'a call already in the conference joined twice');
    const listed = await cb.media_<{ participants: { call_id: string }[] }>('GetConference', { conference_id: conf });
    assert.deepEqual(listed.response?.participants.map((p) => p.call_id).sort(), [x.id, y.id, w.id].sort());

    const calls = [x, y, w];
    const freqs = [400, 700, 1100];
    await Promise.all(calls.map((c, i) => c.phone.sendPcm(tone(freqs[i]!, 1500, 8000, 6000), c.port)));
    await sleep(200);
    for (const [i, c] of calls.entries()) {
      const db = heard(c.phone, freqs);
      for (const [f, d] of db.entries()) {
        if (f === i) assert.ok(d < -40, `phone ${i} hears its own ${freqs[f]} Hz at ${d.toFixed(1)} dBFS`);
        else assert.ok(d > -25, `phone ${i} does not hear ${freqs[f]} Hz (${d.toFixed(1)} dBFS)`);
      }
    }

    // Kicked through B: B's call ends on B.
    assert.equal((await cb.media_('RemoveFromConference', { conference_id: conf, participant_id: y.id, kick: true })).error, undefined);
    await eventually(async () => (await cb.media_('GetCallQuality', { server_rtp_port: y.port })).error?.code === grpc.status.NOT_FOUND, 5000);
    // B's other call ends: its seat on A goes.
    assert.equal((await cb.media_('ReleasePort', { rtp_port: w.port })).error, undefined);
    await eventually(async () => (await ca.media_<{ participants: unknown[] }>('GetConference', { conference_id: conf })).response?.participants.length === 1, 5000);
    // A new call meant for the conference is placed on A, asked of B.
    const near = await cb.media_<{ rtp_port: number }>('AllocatePort', { call_id: newCallId(), conference_id: conf });
    assert.equal(near.error, undefined, near.error?.details);
    assert.ok(inRange(near.response!.rtp_port, A), `a call for A's conference got port ${near.response!.rtp_port}`);
    await ca.media_('ReleasePort', { rtp_port: near.response!.rtp_port });
    // Ended through B: the id is free, and B may make a conference of it.
    assert.equal((await cb.media_('EndConference', { conference_id: conf })).error, undefined);
    assert.equal((await ca.media_('GetConference', { conference_id: conf })).error?.code, grpc.status.NOT_FOUND);
    await eventually(async () => !(await cb.media_('CreateConference', { conference_id: conf })).error, 5000);
    assert.equal((await ca.media_<{ participants: unknown[] }>('GetConference', { conference_id: conf })).error, undefined, 'A does not find the conference B made');
    await b.settle();
    assert.ok(b.lines.some((l) => l.event === 'CONFERENCE_CREATED' && l.conference_id === conf), 'the conference was not made on B');
    assert.equal((await ca.media_('EndConference', { conference_id: conf })).error, undefined);
    await ca.media_('ReleasePort', { rtp_port: x.port });
  });

  test('a browser that reaches B joins the room of a conference A mixes, whichever instance its id would put a room on', async () => {
    // An id whose room, were it no conference's, would live on B (rooms of no call are spread by id).
    const homeOf = (room: string): number => {
      let h = 2166136261;
      for (let i = 0; i < room.length; i++) h = Math.imul(h ^ room.charCodeAt(i), 16777619);
      return (h >>> 0) % 2;
    };
    let conf = `room-across-${process.pid}`;
    for (let i = 0; homeOf(conf) !== 1; i++) conf = `room-across-${process.pid}-${i}`;
    assert.equal((await ca.media_('CreateConference', { conference_id: conf })).error, undefined);
    try {
      const t = await cb.media_<{ token: string }>('CreateRoomToken', { room_id: conf, participant: 'agent' });
      assert.equal(t.error, undefined, t.error?.details);
      const s = await connectSignaling(b.url(''), '/signaling', conf);
      try {
        const joined = await request<JoinResponse>(s, 'join', { roomId: conf, token: t.response!.token });
        assert.ok(joined.ok, JSON.stringify(joined));
        assert.equal(joined.data.conference?.conferenceId, conf, 'the browser joined a room of its own on B, not the conference A mixes');
        const quality = await cb.media_<{ room_id: string }>('GetRoomQuality', { room_id: conf });
        assert.equal(quality.error, undefined, quality.error?.details);
        assert.equal(quality.response?.room_id, conf);
      } finally {
        s.disconnect();
      }
    } finally {
      await ca.media_('EndConference', { conference_id: conf });
    }
  });

  test('an instance whose RTP range overlaps a live one’s refuses to start', async () => {
    const r = await runToExit({ ...instanceEnv('instance-c', { min: 34100, max: 34299 }), MEDIA_SERVICE_GRPC_PORT: '0', MEDIA_SERVICE_METRICS_PORT: '0', MEDIA_SERVICE_GRPC_LISTEN_ADDRESS: '127.0.0.1', MEDIA_SERVICE_METRICS_LISTEN_ADDRESS: '127.0.0.1', RTP_SERVICE_LISTEN_ADDRESS: '127.0.0.1', WEBRTC_LISTEN_IP: '127.0.0.1', WEBRTC_PORT: String(await freePortRun(4)) });
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
    // A leg across instances: B's half closes once A's heartbeat runs out.
    const x = await callOn(ca, A);
    const y = await callOn(cb, B);
    assert.equal((await cb.media_('BridgeCalls', { server_rtp_port_a: y.port, server_rtp_port_b: x.port })).error, undefined);
    await a.stop('SIGKILL');
    await b.waitForLog((l) => l.event === 'BRIDGE_CLOSED' && (l.attributes as Record<string, unknown>)['rtp.port'] === y.port, 15_000);
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
      // C joined a moment ago, before B's next heartbeat read the registry: B still reaches C's call.
      const joined = await callOn(cc, C);
      const through = await cb.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: joined.port, rtp_target_addr: joined.phone.address });
      assert.equal(through.error, undefined, through.error?.details);
      assert.equal((await cb.media_('ReleasePort', { rtp_port: joined.port })).error, undefined);
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
      await b.settle();
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
