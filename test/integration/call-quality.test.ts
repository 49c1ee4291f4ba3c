import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient } from '../helpers/grpc-client.ts';
import { speechFixtures, tone } from '../helpers/audio.ts';
import { ffmpegSendRtp, freeUdpPort } from '../helpers/ffmpeg.ts';
import { buildRtp } from '../../src/rtp-bridge/rtp-packet.ts';
import { encodeG711 } from '../../src/codecs/g711.ts';

interface Quality {
  call_id: string;
  codec: string;
  inbound: { packets: number | string; expected: number | string; lost: number | string; loss_ratio: number; jitter_ms: number; ssrc: number; loss_bursts: number; longest_loss_burst: number; concealed_frames: number | string; late_packets: number | string };
  outbound: { packets: number | string };
  remote: Record<string, unknown>;
  rtcp: { local_port: number; muxed: boolean; remote: string; srtcp: boolean; sent: number | string; received: number | string; srtcp_auth_failures: number; srtcp_replays: number };
  mos: number;
  r_factor: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A phone whose packets leave at chosen times: loss and delay the test knows exactly. */
async function sendShaped(port: number, n: number, opts: { drop: (k: number) => boolean; delayMs: (k: number) => number }): Promise<{ sent: number; jitterMs: number }> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const payload = encodeG711('PCMU', tone(440, 20, 8000));
  const t0 = performance.now() + 20;
  let sent = 0;
  // The jitter RFC 3550 defines, from when each packet actually left here (loopback adds ~0).
  let j = 0;
  let prevTransit: number | null = null;
  for (let k = 0; k < n; k++) {
    const at = t0 + k * 20 + opts.delayMs(k);
    const wait = at - performance.now();
    if (wait > 1) await sleep(wait - 1);
    while (performance.now() < at);
    if (opts.drop(k)) continue;
    const leftMs = performance.now();
    sock.send(buildRtp({ marker: k === 0, payloadType: 0, sequenceNumber: (60000 + k) & 0xffff, timestamp: (k * 160) >>> 0, ssrc: 0x51ced }, payload), port, '127.0.0.1');
    sent++;
    const transit = leftMs * 8 - k * 160;
    if (prevTransit !== null) j += (Math.abs(transit - prevTransit) - j) / 16;
    prevTransit = transit;
  }
  // A send completes after a lookup on the next tick: closing at once would lose the last one.
  await new Promise<void>((r) => sock.send(Buffer.alloc(0), 9, '127.0.0.1', () => r()));
  sock.close();
  return { sent, jitterMs: j / 8 };
}

/** RTCP XR with one VoIP metrics block (RFC 3611 4.7) about `ssrc`, written by hand. */
function voipXr(ssrc: number): Buffer {
  const b = Buffer.alloc(8 + 36);
  b[0] = 0x80;
  b[1] = 207;
  b.writeUInt16BE(b.length / 4 - 1, 2);
  b.writeUInt32BE(0x51cee, 4);
  b[8] = 7;
  b.writeUInt16BE(8, 10);
  b.writeUInt32BE(ssrc, 12);
  b[16] = 13; // loss rate 13/256
  b[18] = 128; // burst density
  b.writeUInt16BE(120, 20); // burst duration
  b.writeUInt16BE(85, 24); // round trip delay
  b[28] = 0xec; // signal level -20 dBm
  b[29] = 127; // noise level: unavailable
  b[30] = 127; // RERL: unavailable
  b[32] = 82; // R factor
  b[33] = 127; // external R factor: unavailable
  b[34] = 41; // MOS-LQ 4.1
  b[35] = 40; // MOS-CQ 4.0
  b[36] = 0xf0; // standard PLC, adaptive jitter buffer
  b.writeUInt16BE(40, 38); // JB nominal
  return b;
}

/** ITU-T G.107's MOS from R (7.3), written out here apart from the service's code. */
const g107Mos = (r: number): number => 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6;

describe('call quality as the service measures it', () => {
  /** The clean ffmpeg call's figures: the 5% loss call is measured against them. */
  let clean: { mos: number; r: number } | undefined;
  let svc: RunningService;
  let client: TestClient;
  let n = 0;
  const open = async (): Promise<{ port: number; callId: string }> => {
    const callId = `quality-${process.pid}-${++n}@test`;
    const r = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId });
    assert.equal(r.error, undefined, r.error?.details);
    return { port: r.response!.rtp_port, callId };
  };
  const quality = async (port: number): Promise<Quality> => {
    const r = await client.media_<Quality>('GetCallQuality', { server_rtp_port: port });
    assert.equal(r.error, undefined, r.error?.details);
    return r.response!;
  };

  before(async () => {
    svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '37800', RTP_SERVICE_PORT_MAX: '37899', LOG_LEVEL: 'info' } });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    client?.close();
    await svc?.stop('SIGKILL');
  });

  test('an ffmpeg phone: every packet counted, none lost, little jitter, a clean G.711 MOS', async (t) => {
    const { port, callId } = await open();
    const fx = speechFixtures();
    const sender = ffmpegSendRtp({ wav: fx.wav8k, port, codec: 'PCMU', localPort: await freeUdpPort() });
    assert.equal(await sender.done, 0, sender.stderr());
    await sleep(200);
    const q = await quality(port);
    t.diagnostic(JSON.stringify(q));
    const frames = Math.ceil(fx.pcm8k.length / 160);
    assert.equal(q.call_id, callId);
    assert.equal(q.codec, 'PCMU');
    assert.ok(Math.abs(Number(q.inbound.packets) - frames) <= 1, `${q.inbound.packets} packets for ${frames} frames of speech`);
    assert.equal(Number(q.inbound.expected), Number(q.inbound.packets));
    assert.equal(Number(q.inbound.lost), 0);
    assert.equal(q.inbound.ssrc, 0x1234abcd);
    assert.ok(q.inbound.jitter_ms < 5, `jitter ${q.inbound.jitter_ms} ms from a paced ffmpeg`);
    assert.ok(q.mos >= 4.2, `MOS ${q.mos} for a clean G.711 call`);
    assert.deepEqual([q.inbound.loss_bursts, q.inbound.longest_loss_burst], [0, 0]);
    clean = { mos: q.mos, r: q.r_factor };
    await client.media_('ReleasePort', { rtp_port: port });
    // A clean call is never reported degraded.
    assert.equal(svc.lines.filter((l) => l.event === 'CALL_QUALITY_DEGRADED' && l.call_id === callId).length, 0);
  });

  test('an ffmpeg phone sending RTCP on the RTP port: its sender report matches what arrived, packet for packet', async (t) => {
    const { port } = await open();
    const fx = speechFixtures();
    const sender = ffmpegSendRtp({ wav: fx.wav8k, port, codec: 'PCMU', localPort: await freeUdpPort(), ssrc: 0x77aa, rtcpMux: true });
    assert.equal(await sender.done, 0, sender.stderr());
    await sleep(200);
    const q = await quality(port);
    t.diagnostic(JSON.stringify(q.remote));
    const r = q.remote as unknown as Record<string, number | string | boolean>;
    assert.ok(Number(r.reports) >= 1, 'no RTCP was read');
    assert.equal(r.malformed, 0);
    assert.equal(r.has_sender_report, true);
    // ffmpeg's last SR counts what it had sent by then; that many had arrived here when it did.
    assert.equal(Number(r.sender_packets), Number(r.received_at_sender_report));
    assert.equal(Number(r.sender_octets), Number(r.sender_packets) * 160);
    assert.ok(Number(r.sender_packets) > 0);
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('5% loss and injected delay: packets exact, loss within a point, jitter within 20%, MOS lower; the end is logged and published', async (t) => {
    const { port, callId } = await open();
    const lost = new Set(Array.from({ length: 20 }, (_, i) => 7 + i * 20));
    // Alternating extra delay keeps the order: 0, 12, 0, 12 ... ms on top of the 20 ms pacing.
    const shaped = await sendShaped(port, 400, { drop: (k) => lost.has(k), delayMs: (k) => (k % 2 ? 12 : 0) });
    await sleep(200);
    const q = await quality(port);
    t.diagnostic(`${JSON.stringify(q)}; the sender's own jitter ${shaped.jitterMs.toFixed(2)} ms`);
    assert.equal(Number(q.inbound.packets), shaped.sent);
    assert.equal(Number(q.inbound.expected), 400 - (lost.has(399) ? 1 : 0));
    assert.ok(Math.abs(q.inbound.loss_ratio - 0.05) <= 0.01, `loss ${q.inbound.loss_ratio}`);
    assert.ok(Math.abs(q.inbound.jitter_ms - shaped.jitterMs) <= shaped.jitterMs * 0.2, `jitter ${q.inbound.jitter_ms} ms, sent with ${shaped.jitterMs.toFixed(2)} ms`);
    assert.ok(q.mos < 4.0 && q.mos > 3.0, `MOS ${q.mos} at 5% loss`);
    // Isolated losses: twenty runs of one packet.
    assert.deepEqual([q.inbound.loss_bursts, q.inbound.longest_loss_burst], [20, 1]);
    // From the clean call, 5% random loss of G.711 with PLC costs Ie,eff = 95 * 5 / (5 + 25.1)
    // points of R (G.107 7.2, Bpl from G.113 appendix I); the MOS must drop by what that R drop
    // makes of the clean call's MOS, within 0.2 (the jitter the test adds moves the delay too).
    if (clean) {
      const expectedDrop = clean.mos - g107Mos(clean.r - (95 * 5) / (5 + 25.1));
      const drop = clean.mos - q.mos;
      t.diagnostic(`MOS ${clean.mos} clean, ${q.mos} at 5% loss: a drop of ${drop.toFixed(2)}, the E-model says ${expectedDrop.toFixed(2)}`);
      assert.ok(Math.abs(drop - expectedDrop) <= 0.2, `MOS dropped ${drop.toFixed(2)}, the E-model says ${expectedDrop.toFixed(2)}`);
    }
    await client.media_('ReleasePort', { rtp_port: port });
    const closed = await svc.waitForLog((l) => l.event === 'SESSION_CLOSED' && l.call_id === callId);
    const a = closed.attributes as Record<string, number>;
    assert.equal(a['rtp.inbound_lost'], 20);
    assert.equal(a['call.mos'], q.mos);
    const ev = await svc.waitForLog((l) => l.event === 'PLATFORM_EVENT' && (l.attributes as Record<string, unknown>)['event.type'] === 'call.media.session.closed' && JSON.stringify(l.attributes).includes(callId));
    const payload = JSON.parse((ev.attributes as { 'event.body': { payload_json: string } })['event.body'].payload_json) as { quality: Quality };
    assert.equal(Number(payload.quality.inbound.lost), 20);
    // Past the loss threshold (3 %) while live: one warning and one event, not one per check.
    const degraded = svc.lines.filter((l) => l.event === 'PLATFORM_EVENT' && (l.attributes as Record<string, unknown>)['event.type'] === 'call.media.quality.degraded' && JSON.stringify(l.attributes).includes(callId));
    assert.equal(degraded.length, 1, `${degraded.length} degraded events for the lossy call`);
    const d = JSON.parse((degraded[0]!.attributes as { 'event.body': { payload_json: string } })['event.body'].payload_json) as { crossed: string[]; port: number; quality: Quality };
    assert.ok(d.crossed.includes('loss'), `crossed ${JSON.stringify(d.crossed)}`);
    assert.equal(d.port, port);
    assert.ok(d.quality.inbound.loss_ratio > 0.03);
    assert.equal(svc.lines.filter((l) => l.event === 'CALL_QUALITY_DEGRADED' && l.call_id === callId).length, 1);
    const metrics = await (await fetch(svc.url('/metrics'))).text();
    assert.match(metrics, /^sentiric_media_calls_quality_degraded_total [1-9]/m);
    assert.match(metrics, /^sentiric_media_call_mos_count [1-9]/m);
    assert.match(metrics, /^sentiric_media_call_inbound_loss_ratio_bucket\{le="0.05"\} [1-9]/m);
  });

  test('the service reports to the phone (SR, report block, CNAME on the RTP port, BYE at the end); RTT from the phone\'s RR is the delay on the path', async (t) => {
    const { port } = await open();
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const PATH_DELAY_MS = 40;
    const rtcp: { at: number; raw: Buffer }[] = [];
    let answered = 0;
    sock.on('message', (raw: Buffer) => {
      if (raw[1]! < 192 || raw[1]! > 223) return;
      rtcp.push({ at: performance.now(), raw });
      // An RR written from RFC 3550 6.4.2: one block about the service's SSRC, LSR the middle 32
      // bits of its SR's NTP time, DLSR how long this phone held it (0 here); the reply is sent
      // PATH_DELAY_MS late, as a path that long would bring it.
      if (raw[1] !== 200 || answered >= 3) return;
      answered++;
      const ssrc = raw.readUInt32BE(4);
      const lsr = ((raw.readUInt32BE(8) & 0xffff) * 65536 + (raw.readUInt32BE(12) >>> 16)) >>> 0;
      const rr = Buffer.alloc(32);
      rr[0] = 0x81;
      rr[1] = 201;
      rr.writeUInt16BE(7, 2);
      rr.writeUInt32BE(0x51ced, 4);
      rr.writeUInt32BE(ssrc, 8);
      rr.writeUInt32BE(lsr, 24);
      rr.writeUInt32BE(0, 28);
      setTimeout(() => sock.send(rr, port, '127.0.0.1'), PATH_DELAY_MS);
    });
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: `127.0.0.1:${sock.address().port}` });
    // The service sends while it plays a prompt: its reports are SRs.
    await client.media_('PlayAudio', { audio_uri: `data:audio/l16;rate=8000;base64,${Buffer.from(tone(440, 12000, 8000).buffer).toString('base64')}`, server_rtp_port: port });
    const payload = encodeG711('PCMU', tone(300, 20, 8000));
    for (let k = 0; k < 450; k++) {
      sock.send(buildRtp({ marker: k === 0, payloadType: 0, sequenceNumber: k, timestamp: k * 160, ssrc: 0x51ced }, payload), port, '127.0.0.1');
      await sleep(20);
    }
    const q = await quality(port);
    t.diagnostic(`${rtcp.length} RTCP packets from the service; remote ${JSON.stringify(q.remote)}; MOS ${q.mos}`);
    assert.ok(rtcp.length >= 1, 'no RTCP from the service in 9 s');
    const first = rtcp[0]!.raw;
    assert.equal(first[1], 200, 'the first report of a sending service is an SR');
    assert.equal(first[0]! & 0x1f, 1, 'with one report block, on the phone\'s stream');
    assert.equal(first.readUInt32BE(28), 0x51ced);
    assert.ok(first.includes(Buffer.from('@sentiric')), 'a CNAME item');
    const gaps = rtcp.slice(1).map((r, i) => r.at - rtcp[i]!.at);
    for (const g of gaps) assert.ok(g >= 2400 && g <= 8000, `reports ${g.toFixed(0)} ms apart (RFC 3550: 5 s, randomized 0.5-1.5)`);
    assert.equal(q.remote.has_rtt, true);
    const rtt = q.remote.rtt_ms as number;
    assert.ok(Math.abs(rtt - PATH_DELAY_MS) <= 5, `RTT ${rtt} ms for a ${PATH_DELAY_MS} ms path`);
    const n = rtcp.length;
    await client.media_('ReleasePort', { rtp_port: port });
    await sleep(200);
    const bye = rtcp.slice(n).find((r) => r.raw.includes(Buffer.from([0x81, 203])));
    assert.ok(bye, 'no BYE when the call ended');
    sock.close();
  });

  test('an ffmpeg phone sending RTCP to RTP+1 (its default): the service reads its sender report there, packet for packet', async (t) => {
    const { port } = await open();
    const fx = speechFixtures();
    const localPort = await freeUdpPort();
    const sender = ffmpegSendRtp({ wav: fx.wav8k, port, codec: 'PCMU', localPort, ssrc: 0x77ab });
    assert.equal(await sender.done, 0, sender.stderr());
    await sleep(200);
    const q = await quality(port);
    t.diagnostic(`rtcp ${JSON.stringify(q.rtcp)}; remote ${JSON.stringify(q.remote)}; inbound ${JSON.stringify(q.inbound)}`);
    const r = q.remote as unknown as Record<string, number | string | boolean>;
    assert.equal(r.has_sender_report, true, 'no SR was read from RTP+1');
    assert.equal(r.malformed, 0);
    assert.ok(Number(r.sender_packets) > 100);
    assert.equal(Number(r.sender_packets), Number(r.received_at_sender_report));
    assert.equal(Number(r.sender_octets), Number(r.sender_packets) * 160);
    // It came to RTP+1 from ffmpeg's RTCP port, so that is where the service's RTCP goes.
    assert.equal(q.rtcp.muxed, false);
    assert.equal(q.rtcp.local_port, port + 1);
    assert.equal(q.rtcp.remote, `127.0.0.1:${localPort + 1}`);
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('a phone that keeps RTCP on its RTP+1: the service reports there from its own RTP+1, RTT from its RR, strangers unread', async (t) => {
    const { port } = await open();
    const rtpPort = await freeUdpPort();
    const bind = async (p: number, address = '127.0.0.1'): Promise<Socket> => {
      const s = createSocket('udp4');
      await new Promise<void>((r) => s.bind(p, address, r));
      return s;
    };
    const rtp = await bind(rtpPort);
    const rtcpSock = await bind(rtpPort + 1);
    const PATH_DELAY_MS = 30;
    const atRtp: Buffer[] = [];
    const atRtcp: { from: number; raw: Buffer }[] = [];
    let phoneRtcp = 0;
    const sendRtcp = (b: Buffer): void => {
      phoneRtcp++;
      rtcpSock.send(b, port + 1, '127.0.0.1');
    };
    const rr = (ourSsrc: number, lsr: number): Buffer => {
      const b = Buffer.alloc(ourSsrc ? 32 : 8);
      b[0] = ourSsrc ? 0x81 : 0x80;
      b[1] = 201;
      b.writeUInt16BE(b.length / 4 - 1, 2);
      b.writeUInt32BE(0x51cee, 4);
      if (ourSsrc) {
        b.writeUInt32BE(ourSsrc, 8);
        b.writeUInt32BE(lsr, 24);
      }
      return b;
    };
    rtp.on('message', (raw: Buffer) => {
      if (raw[1]! >= 192 && raw[1]! <= 223) atRtp.push(raw);
    });
    rtcpSock.on('message', (raw: Buffer, from) => {
      atRtcp.push({ from: from.port, raw });
      if (raw[1] !== 200) return;
      const lsr = ((raw.readUInt32BE(8) & 0xffff) * 65536 + (raw.readUInt32BE(12) >>> 16)) >>> 0;
      // With its RR, an RTCP XR VoIP metrics block (RFC 3611 4.7) about the service's stream.
      setTimeout(() => sendRtcp(Buffer.concat([rr(raw.readUInt32BE(4), lsr), voipXr(raw.readUInt32BE(4))])), PATH_DELAY_MS);
    });
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: `127.0.0.1:${rtpPort}` });
    await client.media_('PlayAudio', { audio_uri: `data:audio/l16;rate=8000;base64,${Buffer.from(tone(440, 9000, 8000).buffer).toString('base64')}`, server_rtp_port: port });
    // Another host (127.0.0.2 is loopback too) sends an SR to RTP+1: it is not the phone.
    const stranger = await bind(0, '127.0.0.2');
    const forged = Buffer.alloc(28);
    forged[0] = 0x80;
    forged[1] = 200;
    forged.writeUInt16BE(6, 2);
    forged.writeUInt32BE(0x51cee, 4);
    forged.writeUInt32BE(999_999, 20);
    const payload = encodeG711('PCMU', tone(300, 20, 8000));
    for (let k = 0; k < 400; k++) {
      rtp.send(buildRtp({ marker: k === 0, payloadType: 0, sequenceNumber: k, timestamp: k * 160, ssrc: 0x51cee }, payload), port, '127.0.0.1');
      // The phone's first RTCP, before the service's first report is due: an empty RR.
      if (k === 10) sendRtcp(rr(0, 0));
      if (k % 50 === 25) stranger.send(forged, port + 1, '127.0.0.1');
      await sleep(20);
    }
    await sleep(PATH_DELAY_MS + 50);
    const q = await quality(port);
    t.diagnostic(`${atRtcp.length} reports at the phone's RTP+1, ${atRtp.length} at its RTP port; rtcp ${JSON.stringify(q.rtcp)}; remote ${JSON.stringify(q.remote)}`);
    assert.equal(atRtp.length, 0, 'RTCP reached the phone\'s RTP port although it keeps RTCP apart');
    assert.ok(atRtcp.length >= 1, 'no RTCP at the phone\'s RTP+1');
    for (const a of atRtcp) assert.equal(a.from, port + 1, 'the service\'s RTCP leaves from its RTP+1');
    assert.equal(atRtcp[0]!.raw[1], 200, 'an SR while the service sends');
    assert.equal(q.rtcp.muxed, false);
    assert.equal(q.rtcp.remote, `127.0.0.1:${rtpPort + 1}`);
    // Every RTCP packet of the phone was read, none of the stranger's.
    assert.equal(Number(q.remote.reports), phoneRtcp);
    assert.equal(q.remote.has_sender_report, false, 'the stranger\'s SR was read');
    assert.equal(q.remote.has_rtt, true);
    const rtt = q.remote.rtt_ms as number;
    assert.ok(Math.abs(rtt - PATH_DELAY_MS) <= 5, `RTT ${rtt} ms for a ${PATH_DELAY_MS} ms path`);
    const voip = q.remote.voip_metrics as Record<string, unknown>;
    assert.deepEqual(
      [voip.loss_rate, voip.burst_density, voip.burst_duration_ms, voip.round_trip_delay_ms, voip.signal_level_dbm, voip.r_factor, voip.mos_lq, voip.plc, voip.jb_nominal_ms],
      [0.0508, 0.5, 120, 85, -20, 82, 4.1, 'standard', 40],
    );
    assert.equal(voip.ext_r_factor ?? null, null, 'a value marked unavailable is left unset');
    const before = atRtcp.length;
    await client.media_('ReleasePort', { rtp_port: port });
    await sleep(200);
    assert.ok(atRtcp.slice(before).some((a) => a.raw.includes(Buffer.from([0x81, 203]))), 'no BYE at the phone\'s RTP+1');
    for (const s of [rtp, rtcpSock, stranger]) s.close();
  });

  test('GetCallQuality of no call answers NOT_FOUND; without a call named, INVALID_ARGUMENT', async () => {
    const none = await client.media_('GetCallQuality', { call_id: 'no-such@x' });
    assert.equal(none.error?.code, 5);
    const bad = await client.media_('GetCallQuality', {});
    assert.equal(bad.error?.code, 3);
  });
});
