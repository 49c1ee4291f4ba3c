import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { copyFileSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually, metricValue } from '../helpers/grpc-client.ts';
import { activeSpan, speechFixtures, type SpeechFixtures } from '../helpers/audio.ts';
import { assertHoldsReference, describeMatch } from '../helpers/reference-match.ts';
import { ffmpegReceiveRtp, ffmpegSendRtp, freeUdpPort, type G711 } from '../helpers/ffmpeg.ts';
import { RtpPeer } from '../helpers/rtp-peer.ts';
import { captureEvents } from '../helpers/amqp.ts';

interface Allocated {
  rtp_port: number;
  rtp_address: string;
}

describe('a phone call through the service', () => {
  let svc: RunningService;
  let client: TestClient;
  let fx: SpeechFixtures;
  let assets: string;
  let amqp: Awaited<ReturnType<typeof captureEvents>>;
  let n = 0;
  const callId = (): string => `call-${process.pid}-${++n}@test`;
  const allocate = async (id = callId()): Promise<number> => {
    const r = await client.media_<Allocated>('AllocatePort', { call_id: id }, { 'x-trace-id': id });
    assert.equal(r.error, undefined, r.error?.details);
    return r.response!.rtp_port;
  };
  const play = (port: number, uri: string, target = '') => client.media_<{ success: boolean; message: string }>('PlayAudio', { audio_uri: uri, server_rtp_port: port, rtp_target_addr: target });

  before(async () => {
    fx = speechFixtures();
    assets = mkdtempSync(join(tmpdir(), 'assets-'));
    copyFileSync(fx.wav16k, join(assets, 'speech-16k.wav'));
    copyFileSync(fx.mp38k, join(assets, 'speech-8k.mp3'));
    symlinkSync('/etc/hostname', join(assets, 'escape.wav'));
    amqp = await captureEvents();
    svc = await startService({
      env: {
        ASSETS_BASE_PATH: assets,
        RTP_SERVICE_PORT_MIN: '32000',
        RTP_SERVICE_PORT_MAX: '32999',
        RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:5672',
        RABBITMQ_EXCHANGE: amqp.exchange,
      },
    });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    client.close();
    await svc.stop('SIGKILL');
    await amqp.close();
  });

  test('AllocatePort gives an even port in the range, the same one again for the same call', async () => {
    const id = callId();
    const a = await client.media_<Allocated>('AllocatePort', { call_id: id });
    const b = await client.media_<Allocated>('AllocatePort', { call_id: id });
    const c = await client.media_<Allocated>('AllocatePort', { call_id: callId() });
    const p = a.response!.rtp_port;
    assert.ok(p >= 32000 && p <= 32999 && p % 2 === 0, `port ${p}`);
    assert.equal(b.response!.rtp_port, p);
    assert.notEqual(c.response!.rtp_port, p);
    assert.equal(a.response!.rtp_address, '127.0.0.1');
    const m = await (await fetch(svc.url('/metrics'))).text();
    assert.ok((metricValue(m, 'sentiric_media_active_sessions') ?? 0) >= 2);
    assert.ok((metricValue(m, 'sentiric_media_rtp_ports_in_use') ?? 0) >= 2);
    for (const r of [a, c]) assert.equal((await client.media_<{ success: boolean }>('ReleasePort', { rtp_port: r.response!.rtp_port })).response?.success, true);
  });

  for (const codec of ['PCMU', 'PCMA'] as G711[]) {
    test(`echo: ffmpeg sends speech as ${codec}, ffmpeg receives it back`, async (t) => {
      const naps = async (): Promise<number> => metricValue(await (await fetch(svc.url('/metrics'))).text(), 'sentiric_media_loop_naps_total') ?? NaN;
      const napsBefore = await naps();
      const port = await allocate();
      const receiver = await ffmpegReceiveRtp({ codec });
      assert.equal((await play(port, 'control://set_target', `127.0.0.1:${receiver.port}`)).response?.success, true);
      assert.equal((await play(port, 'control://enable_echo')).response?.success, true);
      const sender = ffmpegSendRtp({ wav: fx.wav8k, port, codec, localPort: await freeUdpPort() });
      assert.equal(await sender.done, 0, sender.stderr());
      await new Promise((r) => setTimeout(r, 300));
      const got = await receiver.stop();
      await client.media_('ReleasePort', { rtp_port: port });
      // G.711 both ways and nothing else: every window of the speech comes back as it went.
      t.diagnostic(describeMatch(assertHoldsReference(got, fx.pcm8k, 8000, { what: `the ${codec} echo` })));
      // The echo went through the wake coalescing the service runs with by default (1 ms).
      assert.ok((await naps()) > napsBefore, 'the media loop took no nap while packets came');
    });
  }

  const prompts: [string, () => string][] = [
    ['a 16 kHz WAV file', () => 'file:///speech-16k.wav'],
    ['an 8 kHz MP3 file', () => 'file://speech-8k.mp3'],
    ['a data: WAV URI', () => `data:audio/wav;base64,${readFileSync(fx.wav8k).toString('base64')}`],
    ['a data: PCM URI', () => `data:audio/pcm;base64,${Buffer.from(fx.pcm8k.buffer, fx.pcm8k.byteOffset, fx.pcm8k.byteLength).toString('base64')}`],
  ];
  for (const [what, uri] of prompts) {
    test(`PlayAudio of ${what} reaches an ffmpeg receiver intact`, async (t) => {
      const port = await allocate();
      const receiver = await ffmpegReceiveRtp({ codec: 'PCMU' });
      const res = await play(port, uri(), `127.0.0.1:${receiver.port}`);
      assert.equal(res.error, undefined, res.error?.details);
      assert.match(res.response!.message, /^playing \d+ ms$/);
      const traceId = svc.lines.find((l) => l.event === 'SESSION_CREATED' && (l.attributes as Record<string, number>)['rtp.port'] === port)?.trace_id;
      const finished = await svc.waitForLog((l) => l.event === 'PLAYBACK_FINISHED' && l.trace_id === traceId, 20_000);
      assert.equal((finished.attributes as Record<string, string>)['playback.result'], 'completed');
      await new Promise((r) => setTimeout(r, 200));
      const got = await receiver.stop();
      await client.media_('ReleasePort', { rtp_port: port });
      t.diagnostic(describeMatch(assertHoldsReference(got, fx.pcm8k, 8000, { what: `the prompt (${what}) as heard` })));
      const src = activeSpan(fx.pcm8k);
      const out = activeSpan(got);
      const ratio = (out.end - out.start) / (src.end - src.start);
      assert.ok(Math.abs(ratio - 1) < 0.01, `speech lasts ${(out.end - out.start) / 8} ms, source ${(src.end - src.start) / 8} ms`);
    });
  }

  test('outbound RTP: one SSRC, no sequence gap, 20 ms cadence, marker on each talk spurt', async () => {
    const port = await allocate();
    const peer = await RtpPeer.open();
    await play(port, 'control://set_target', peer.address);
    const short = `data:audio/pcm;base64,${Buffer.from(fx.pcm8k.buffer, fx.pcm8k.byteOffset, 8000 * 2).toString('base64')}`;
    await play(port, short);
    await play(port, short);
    await eventually(() => peer.received.length >= 100, 5000);
    await new Promise((r) => setTimeout(r, 500));
    await play(port, short);
    await eventually(() => peer.received.length >= 150, 5000);
    await client.media_('ReleasePort', { rtp_port: port });
    peer.close();
    const pk = peer.received;
    assert.equal(new Set(pk.map((p) => p.ssrc)).size, 1);
    for (let i = 1; i < pk.length; i++) assert.equal((pk[i]!.seq - pk[i - 1]!.seq) & 0xffff, 1, `sequence continuity at ${i}`);
    assert.deepEqual(pk.flatMap((p, i) => (p.marker ? [i] : [])), [0, 100], 'marker on the first packet of each spurt only');
    // Two back-to-back prompts play as one spurt: timestamps advance 160 per packet.
    for (let i = 1; i < 100; i++) assert.equal((pk[i]!.ts - pk[i - 1]!.ts) >>> 0, 160);
    assert.ok(((pk[100]!.ts - pk[99]!.ts) >>> 0) > 160 * 10, 'the pause advanced the timestamp');
    // Arrival times here are this process's, which a busy machine delays too: the tight
    // per-packet bound is checked on kernel capture timestamps in the live-audio suite.
    const gaps = pk.slice(1, 100).map((p, i) => p.at - pk[i]!.at).sort((a, b) => a - b);
    const median = gaps[Math.floor(gaps.length / 2)]!;
    const mean = (pk[99]!.at - pk[0]!.at) / 99;
    assert.ok(Math.abs(median - 20) < 2, `median interval ${median.toFixed(2)} ms`);
    assert.ok(Math.abs(mean - 20) < 0.4, `mean interval ${mean.toFixed(2)} ms over 99 packets`);
    assert.ok(gaps.at(-1)! < 60, `longest interval ${gaps.at(-1)!.toFixed(2)} ms`);
  });

  test('nothing is sent before the far end is known; the first packet latches it (comedia)', async () => {
    const port = await allocate();
    const peer = await RtpPeer.open();
    await play(port, `data:audio/pcm;base64,${Buffer.from(fx.pcm8k.buffer, fx.pcm8k.byteOffset, 4000 * 2).toString('base64')}`);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(peer.received.length, 0);
    await peer.sendPcm(new Int16Array(160 * 5), port);
    await eventually(() => peer.received.length >= 20, 5000);
    await client.media_('ReleasePort', { rtp_port: port });
    peer.close();
  });

  test('DTMF digits (RFC 4733) are reported once each, in order, as logs, metrics and events', async () => {
    const id = callId();
    const port = await allocate(id);
    const peer = await RtpPeer.open();
    await peer.sendDtmf('1234#*9', port);
    const digits = await eventually(() => {
      const d = svc.lines.filter((l) => l.event === 'DTMF_RECEIVED' && l.call_id === id).map((l) => (l.attributes as Record<string, string>)['dtmf.digit']);
      return d.length >= 7 ? d : undefined;
    });
    assert.deepEqual(digits, ['1', '2', '3', '4', '#', '*', '9']);
    const evs = await eventually(() => {
      const e = amqp.events.filter((e) => e.routingKey === 'call.media.dtmf.received' && JSON.parse(String(e.body.payload_json)).callId === id);
      return e.length >= 7 ? e : undefined;
    });
    assert.deepEqual(evs.map((e) => JSON.parse(String(e.body.payload_json)).digit), ['1', '2', '3', '4', '#', '*', '9']);
    await client.media_('ReleasePort', { rtp_port: port });
    peer.close();
  });

  test('the platform receives call.media.playback.finished on RabbitMQ', async () => {
    const id = callId();
    const port = await allocate(id);
    const peer = await RtpPeer.open();
    const uri = 'file:///speech-16k.wav';
    await play(port, uri, peer.address);
    const ev = await eventually(() => amqp.events.find((e) => e.routingKey === 'call.media.playback.finished' && JSON.parse(String(e.body.payload_json)).callId === id), 20_000);
    assert.equal(ev.persistent, true);
    assert.equal(ev.body.event_type, 'call.media.playback.finished');
    assert.equal(ev.body.trace_id, id);
    assert.equal(typeof ev.body.timestamp, 'string');
    assert.deepEqual(JSON.parse(String(ev.body.payload_json)), { callId: id, uri, status: 'completed' });
    await client.media_('ReleasePort', { rtp_port: port });
    peer.close();
  });

  test('barge-in: control://stop_playback stops the prompt at once', async () => {
    const port = await allocate();
    const peer = await RtpPeer.open();
    await play(port, 'file:///speech-16k.wav', peer.address);
    await eventually(() => peer.received.length >= 10, 5000);
    const stop = await play(port, 'control://stop_playback');
    assert.match(stop.response!.message, /stopped 1 prompt/);
    const count = peer.received.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(peer.received.length - count <= 2, `${peer.received.length - count} packets after the stop`);
    await client.media_('ReleasePort', { rtp_port: port });
    peer.close();
  });

  test('bad PlayAudio input gets clear errors and the service keeps serving', async () => {
    const port = await allocate();
    const cases: [string, string, grpc.status, RegExp][] = [
      ['file://../../etc/passwd', '', grpc.status.INVALID_ARGUMENT, /outside the assets directory/],
      ['file:///../../../etc/passwd', '', grpc.status.INVALID_ARGUMENT, /outside the assets directory/],
      ['file:///escape.wav', '', grpc.status.INVALID_ARGUMENT, /outside the assets directory/],
      ['file:///missing.wav', '', grpc.status.NOT_FOUND, /prompt not found/],
      [`data:audio/wav;base64,${'A'.repeat(12 * 1024 * 1024)}`, '', grpc.status.INVALID_ARGUMENT, /larger than/],
      ['data:audio/wav;base64,UklGRgAAAABXQVZF', '', grpc.status.INVALID_ARGUMENT, /WAV/i],
      ['ftp://host/x.wav', '', grpc.status.INVALID_ARGUMENT, /unsupported audio_uri scheme/],
      ['control://explode', '', grpc.status.INVALID_ARGUMENT, /unknown control URI/],
      ['control://set_target', 'nonsense', grpc.status.INVALID_ARGUMENT, /rtp_target_addr must be ip:port/],
      ['http://127.0.0.1:1/x.wav', '', grpc.status.FAILED_PRECONDITION, /disabled/],
    ];
    for (const [uri, target, code, pattern] of cases) {
      const r = await play(port, uri, target);
      assert.equal(r.error?.code, code, `${uri.slice(0, 40)}: ${r.error?.details}`);
      assert.match(r.error!.details, pattern);
    }
    const unknown = await play(31, 'control://enable_echo');
    assert.equal(unknown.error?.code, grpc.status.NOT_FOUND);
    assert.equal((await client.check()).response?.status, 'SERVING');
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('ReleasePort of an unknown port answers success', async () => {
    const r = await client.media_<{ success: boolean }>('ReleasePort', { rtp_port: 32998 });
    assert.equal(r.response?.success, true);
  });
});
