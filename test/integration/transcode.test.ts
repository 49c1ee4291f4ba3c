import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually, metricValue } from '../helpers/grpc-client.ts';
import { rmsDb, speechFixtures, type SpeechFixtures } from '../helpers/audio.ts';
import { OPUS_MATCH, assertHoldsReference, assertMatchHolds, describeMatch, matchReference } from '../helpers/reference-match.ts';
import { ffmpegReceiveRtp, ffmpegSendRtp, freeUdpPort } from '../helpers/ffmpeg.ts';
import { RtpPeer, type ReceivedPacket } from '../helpers/rtp-peer.ts';
import { decodeG711, encodeG711 } from '../../src/codecs/g711.ts';
import { OpusFrameDecoder } from '../../src/codecs/opus.ts';
import { buildRtp } from '../../src/rtp-bridge/rtp-packet.ts';

const OPUS_PT = 111;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A received RTP stream laid out on the test's wall clock at 8 kHz, sample 0 at `originMs`:
 * packets in sequence order, 20 ms each, as ffmpeg's receiver plays them (a tick the sender
 * had nothing for is not silence here, so a late packet delays what follows but does not
 * move it). The stream is tied to the wall clock by the median of (arrival - position),
 * which absorbs jitter.
 */
function onWallClock(pkts: ReceivedPacket[], opts: { pt: number; originMs: number; length: number; decode: (p: Buffer) => Int16Array }): Int16Array {
  const ps = pkts.filter((p) => p.payloadType === opts.pt);
  const out = new Int16Array(opts.length);
  if (ps.length === 0) return out;
  const seq0 = ps[0]!.seq;
  const positionMs = (p: ReceivedPacket): number => ((p.seq - seq0) & 0xffff) * 20;
  const anchors = ps.map((p) => p.at - positionMs(p)).sort((a, b) => a - b);
  const anchor = anchors[Math.floor(anchors.length / 2)]!;
  for (const p of ps) {
    const pcm = opts.decode(p.payload);
    const at = Math.round((anchor - opts.originMs + positionMs(p)) * 8);
    if (at >= 0 && at + pcm.length <= out.length) out.set(pcm, at);
  }
  return out;
}

describe('transcoding: a G.711 leg bridged to an Opus leg', () => {
  let svc: RunningService;
  let client: TestClient;
  let fx: SpeechFixtures;
  let n = 0;
  const allocate = async (codec = '', extra: Record<string, unknown> = {}): Promise<number> => {
    const id = `transcode-${process.pid}-${++n}`;
    const r = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: id, codec, ...extra }, { 'x-trace-id': id });
    assert.equal(r.error, undefined, r.error?.details);
    return r.response!.rtp_port;
  };
  const setTarget = async (port: number, addr: string): Promise<void> => {
    const r = await client.media_<{ success: boolean }>('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: addr });
    assert.equal(r.error, undefined, r.error?.details);
  };
  const bridge = (a: number, b: number) => client.media_<{ success: boolean }>('BridgeCalls', { server_rtp_port_a: a, server_rtp_port_b: b });
  const unbridge = (port: number) => client.media_<{ success: boolean }>('UnbridgeCalls', { server_rtp_port: port });
  const release = (port: number) => client.media_('ReleasePort', { rtp_port: port });
  const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> =>
    metricValue(await (await fetch(svc.url('/metrics'))).text(), name, labels) ?? NaN;

  before(async () => {
    fx = speechFixtures();
    svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '37000', RTP_SERVICE_PORT_MAX: '37999', LOG_LEVEL: 'info' } });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    client.close();
    await svc.stop('SIGKILL');
  });

  test('ffmpeg speaks PCMU into leg A; an ffmpeg Opus receiver on leg B hears it', async (t) => {
    const a = await allocate('PCMU');
    const b = await allocate('OPUS');
    const receiver = await ffmpegReceiveRtp({ codec: 'OPUS', payloadType: OPUS_PT });
    await setTarget(b, `127.0.0.1:${receiver.port}`);
    const r = await bridge(a, b);
    assert.equal(r.error, undefined, r.error?.details);
    assert.equal(r.response?.success, true);
    const created = await svc.waitForLog((l) => l.event === 'BRIDGE_CREATED' && (l.attributes as Record<string, unknown>)['rtp.port'] === b);
    assert.equal((created.attributes as Record<string, unknown>)['bridge.peer_port'], a);
    assert.equal((created.attributes as Record<string, unknown>)['rtp.codec'], 'OPUS');
    const sender = ffmpegSendRtp({ wav: fx.wav8k, port: a, codec: 'PCMU', localPort: await freeUdpPort() });
    assert.equal(await sender.done, 0, sender.stderr());
    await sleep(300);
    const got = await receiver.stop();
    await release(a);
    await release(b);
    const m = matchReference(got, fx.pcm8k, 8000, OPUS_MATCH);
    const msg = `PCMU -> Opus, ffmpeg's decoder: ${describeMatch(m)}; ${rmsDb(got).toFixed(1)} dBFS`;
    t.diagnostic(msg);
    console.log(`[transcode] ${msg}`);
    assertMatchHolds(m, { what: "leg B's Opus, decoded by ffmpeg", ...OPUS_MATCH });
  });

  test('round trip G.711 -> Opus -> reflected -> Opus -> G.711 keeps the speech; latency is measured', async (t) => {
    const a = await allocate('PCMU');
    const b = await allocate('OPUS');
    const phone = await RtpPeer.open();
    // B's far end: a reflector that sends every Opus packet straight back to B.
    const farB = await RtpPeer.open();
    farB.socket.on('message', (raw) => farB.sendRaw(raw, b));
    await setTarget(b, farB.address);
    assert.equal((await bridge(a, b)).error, undefined);
    const source = fx.pcm8k.subarray(0, fx.pcm8k.length - (fx.pcm8k.length % 160));
    const g711Only = decodeG711('PCMU', encodeG711('PCMU', source));
    const originMs = performance.now();
    await phone.sendPcm(source, a, { codec: 'PCMU' });
    await sleep(400);
    await release(a);
    await release(b);
    phone.close();
    farB.close();

    // What B sent: 20 ms Opus on the 48 kHz clock, one SSRC, continuous sequence numbers.
    const opus = farB.received.filter((p) => p.payloadType === OPUS_PT);
    assert.ok(opus.length > source.length / 160 - 20, `${opus.length} Opus packets for ${source.length / 160} frames`);
    assert.equal(new Set(opus.map((p) => p.ssrc)).size, 1);
    for (let i = 1; i < opus.length; i++) {
      const dSeq = (opus[i]!.seq - opus[i - 1]!.seq) & 0xffff;
      assert.equal(dSeq, 1, `sequence continuity at ${i}`);
      const dTs = (opus[i]!.ts - opus[i - 1]!.ts) >>> 0;
      assert.ok(dTs % 960 === 0 && dTs >= 960, `timestamp step ${dTs} at ${i}`);
    }
    const steps = opus.slice(1).filter((p, i) => ((p.ts - opus[i]!.ts) >>> 0) === 960).length;
    assert.ok(steps > opus.length * 0.95, `${steps}/${opus.length} packets 960 ticks after the previous one`);
    const sizes = opus.map((p) => p.payload.length).sort((x, y) => x - y);
    assert.ok(sizes.at(-1)! < 160, `Opus payloads up to ${sizes.at(-1)} bytes (G.711 would be 160)`);

    const length = source.length + 8000;
    const decoder = new OpusFrameDecoder({ sampleRate: 8000 });
    const atB = onWallClock(farB.received, { pt: OPUS_PT, originMs, length, decode: (p) => decoder.decode(p) });
    const atA = onWallClock(phone.received, { pt: 0, originMs, length, decode: (p) => decodeG711('PCMU', p) });
    const oneWay = matchReference(atB, g711Only, 8000, OPUS_MATCH);
    const roundTrip = matchReference(atA, g711Only, 8000, OPUS_MATCH);
    const msg =
      `A->B (PCMU in, Opus out): delay ${(oneWay.lag / 8).toFixed(1)} ms (incl. Opus look-ahead 6.5 ms), ${describeMatch(oneWay)}; ` +
      `round trip A->B->reflector->B->A (G.711 -> Opus -> G.711) against the G.711-only path: delay ${(roundTrip.lag / 8).toFixed(1)} ms, ${describeMatch(roundTrip)}`;
    t.diagnostic(msg);
    console.log(`[transcode] ${msg}`);
    const closed = await svc.waitForLog((l) => l.event === 'BRIDGE_CLOSED' && (l.attributes as Record<string, unknown>)['rtp.port'] === a);
    const at = closed.attributes as Record<string, unknown>;
    t.diagnostic(`bridge frames/dropped/trimmed/underruns: A->B ${String(at['bridge.a_to_b'])}, B->A ${String(at['bridge.b_to_a'])}`);
    console.log(`[transcode] bridge frames/dropped/trimmed/underruns: A->B ${String(at['bridge.a_to_b'])}, B->A ${String(at['bridge.b_to_a'])}`);
    assertMatchHolds(oneWay, { what: 'A->B', ...OPUS_MATCH });
    assertMatchHolds(roundTrip, { what: 'the round trip', ...OPUS_MATCH });
    // Bounded: the goal is 40 ms one way (the benchmark measures it); a busy test machine
    // builds jitter cushions, so the bound here has slack.
    assert.ok(oneWay.lag / 8 < 80, `one-way delay ${oneWay.lag / 8} ms`);
    assert.ok(roundTrip.lag / 8 < 160, `round-trip delay ${roundTrip.lag / 8} ms`);
  });

  test('bad requests get clear statuses; a call whose peer left can be bridged again', async (t) => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ codec: 'G729' }, /codec must be PCMU, PCMA or OPUS/],
      [{ codec: 'OPUS', opus_payload_type: 42 }, /opus_payload_type must be a dynamic RTP payload type \(96-127\), got 42/],
      [{ codec: 'OPUS', opus_payload_type: 101 }, /telephone-event payload type/],
    ];
    for (const [extra, pattern] of bad) {
      const r = await client.media_('AllocatePort', { call_id: `bad-${++n}`, ...extra });
      assert.equal(r.error?.code, grpc.status.INVALID_ARGUMENT, JSON.stringify(extra));
      assert.match(r.error!.details, pattern);
    }

    const a = await allocate('PCMU');
    const b = await allocate('opus');
    const c = await allocate();
    const expect = async (p: Promise<{ error?: grpc.ServiceError }>, code: grpc.status, pattern: RegExp): Promise<void> => {
      const r = await p;
      assert.equal(r.error?.code, code, r.error?.details);
      assert.match(r.error!.details, pattern);
    };
    await expect(bridge(a, 31), grpc.status.NOT_FOUND, /no call session on port 31/);
    await expect(bridge(37998, a), grpc.status.NOT_FOUND, /no call session on port 37998/);
    await expect(bridge(a, a), grpc.status.INVALID_ARGUMENT, /cannot be bridged with itself/);
    await expect(bridge(a, 0), grpc.status.INVALID_ARGUMENT, /server_rtp_port_b is required/);
    await expect(unbridge(a), grpc.status.FAILED_PRECONDITION, /is not bridged/);
    await expect(unbridge(31), grpc.status.NOT_FOUND, /no call session/);
    assert.equal((await bridge(a, b)).response?.success, true);
    await expect(bridge(a, b), grpc.status.ALREADY_EXISTS, /already bridged/);
    await expect(bridge(b, a), grpc.status.ALREADY_EXISTS, /already bridged/);
    await expect(bridge(c, a), grpc.status.FAILED_PRECONDITION, new RegExp(`port ${a} is already bridged with the call on port ${b}`));
    await expect(bridge(b, c), grpc.status.FAILED_PRECONDITION, new RegExp(`port ${b} is already bridged`));
    assert.equal(await metric('sentiric_media_bridges_active'), 1);

    // A's call ends: the bridge goes with it, B stays and is free again.
    await release(a);
    const closed = await svc.waitForLog((l) => l.event === 'BRIDGE_CLOSED' && (l.attributes as Record<string, unknown>)['rtp.port'] === b);
    assert.equal((closed.attributes as Record<string, unknown>).reason, 'call_closed');
    assert.equal(await metric('sentiric_media_bridges_active'), 0);
    await expect(unbridge(b), grpc.status.FAILED_PRECONDITION, /is not bridged/);

    // B bridged again, to C: C's phone speaks, B's far end gets Opus; B survives garbage.
    const phoneC = await RtpPeer.open();
    const farB = await RtpPeer.open();
    await setTarget(b, farB.address);
    assert.equal((await bridge(c, b)).response?.success, true);
    const malformed0 = await metric('sentiric_media_rtp_malformed_packets_total');
    const garbage = [Buffer.from([0xff, 0xff]), Buffer.from([0x03]), Buffer.alloc(0), Buffer.alloc(400, 0xff)];
    garbage.forEach((g, k) => farB.sendRaw(buildRtp({ marker: false, payloadType: OPUS_PT, sequenceNumber: k, timestamp: k * 960, ssrc: 77 }, g), b));
    const spoken = fx.pcm8k.subarray(0, 8000 * 2);
    await phoneC.sendPcm(spoken, c);
    await eventually(() => farB.received.filter((p) => p.payloadType === OPUS_PT).length >= 80, 3000);
    // The last packets are still in the bridge's cushion when the phone is done.
    await sleep(300);
    const decoder = new OpusFrameDecoder({ sampleRate: 8000 });
    const heard = new Int16Array(farB.received.filter((p) => p.payloadType === OPUS_PT).flatMap((p) => [...decoder.decode(p.payload)]));
    t.diagnostic(`B heard C after re-bridging: ${describeMatch(assertHoldsReference(heard, spoken, 8000, { what: "C's speech at B's far end after re-bridging", ...OPUS_MATCH }))}`);
    assert.equal((await metric('sentiric_media_rtp_malformed_packets_total')) - malformed0, garbage.length, 'every corrupt Opus packet counted');
    assert.equal((await unbridge(b)).response?.success, true);
    const unbridged = await svc.waitForLog((l) => l.event === 'BRIDGE_CLOSED' && (l.attributes as Record<string, unknown>).reason === 'unbridged' && (l.attributes as Record<string, unknown>)['rtp.port'] === c);
    assert.equal((unbridged.attributes as Record<string, unknown>)['bridge.peer_port'], b);

    // After the unbridge, B's far end hears nothing more of C.
    const before = farB.received.length;
    await phoneC.sendPcm(fx.pcm8k.subarray(0, 8000 / 2), c);
    await sleep(100);
    assert.equal(farB.received.length, before, 'nothing reaches B once unbridged');
    await release(b);
    const sessionClosed = await svc.waitForLog((l) => l.event === 'SESSION_CLOSED' && (l.attributes as Record<string, unknown>)['rtp.port'] === b);
    assert.equal((sessionClosed.attributes as Record<string, unknown>)['rtp.opus_corrupt'], garbage.length);
    await release(c);
    phoneC.close();
    farB.close();
    assert.equal(await metric('sentiric_media_bridges_active'), 0);
    assert.equal((await client.check()).response?.status, 'SERVING');
  });
});
