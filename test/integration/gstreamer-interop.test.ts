import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually, metricValue } from '../helpers/grpc-client.ts';
import { freeUdpPort } from '../helpers/ffmpeg.ts';
import { captureUdp } from '../helpers/capture.ts';
import { gstPython, startGstPhone, type GstPhone, type GstSource } from '../helpers/gst.ts';
import { generateKeyParams } from '../../src/rtp-bridge/srtp/sdes.ts';
import type { SrtpSuite } from '../../src/rtp-bridge/srtp/suites.ts';

/**
 * GStreamer from Debian as the phone: rtpbin's rtpsession is an RTCP implementation nobody
 * here wrote, and srtpenc/srtpdec are libsrtp. What GStreamer reports of the service's stream
 * (its SRs, through SRTCP on SRTP legs) and of its own (the service's report blocks) is read
 * from its own statistics; what the service reports of GStreamer's stream from GetCallQuality.
 */

interface Quality {
  inbound: { packets: string; expected: string; lost: string; ssrc: number };
  outbound: { packets: string; ssrc: number };
  remote: { reports: number; cname: string; has_sender_report: boolean; sender_packets: string; received_at_sender_report: string; has_rtt: boolean; rtt_ms: number; has_report_of_ours: boolean; cumulative_lost: string };
  rtcp: { local_port: number; muxed: boolean; remote: string; srtcp: boolean; sent: string; received: string; srtcp_auth_failures: number; srtcp_replays: number };
}

const PACKETS = 500;
const PHONE_SSRC = 0x6a57e11a;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const python = gstPython();
const skip = python ? false : 'GStreamer with python3-gi is not installed (scripts/test.sh installs it)';

describe('GStreamer rtpbin (and libsrtp) as the phone', { skip }, () => {
  let svc: RunningService;
  let client: TestClient;
  let n = 0;

  before(async () => {
    svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '37900', RTP_SERVICE_PORT_MAX: '37999', LOG_LEVEL: 'info' } });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    client?.close();
    await svc?.stop('SIGKILL');
  });

  const quality = async (port: number): Promise<Quality> => {
    const r = await client.media_<Quality>('GetCallQuality', { server_rtp_port: port });
    assert.equal(r.error, undefined, r.error?.details);
    return r.response!;
  };

  /** A call with GStreamer on it, echoing GStreamer's audio back so the service sends too. */
  const call = async (suite?: SrtpSuite, beforePhone?: (port: number) => Promise<void>): Promise<{ port: number; phone: GstPhone; localPort: number; callId: string }> => {
    const phoneKey = suite ? generateKeyParams(suite) : '';
    const callId = `gst-${process.pid}-${++n}@test`;
    const a = await client.media_<{ rtp_port: number; srtp?: { key_params: string } }>('AllocatePort', { call_id: callId, ...(suite ? { srtp: { crypto_suite: suite, key_params: phoneKey } } : {}) });
    assert.equal(a.error, undefined, a.error?.details);
    const port = a.response!.rtp_port;
    const localPort = await freeUdpPort();
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: `127.0.0.1:${localPort}` });
    await client.media_('PlayAudio', { audio_uri: 'control://enable_echo', server_rtp_port: port });
    await beforePhone?.(port);
    const phone = await startGstPhone(python as string, { servicePort: port, localPort, packets: PACKETS, ...(suite ? { srtp: { suite, serviceKey: a.response!.srtp!.key_params, phoneKey } } : {}) });
    return { port, phone, localPort, callId };
  };

  const own = (phone: GstPhone): GstSource | undefined => phone.sources.get(PHONE_SSRC);

  /** The call's end as GStreamer sees it: the service's final SR counts every packet it sent, all received. */
  const finish = async (port: number, callId: string, phone: GstPhone): Promise<GstSource> => {
    assert.equal((await client.media_('ReleasePort', { rtp_port: port })).error, undefined);
    const closed = await svc.waitForLog((l) => l.event === 'SESSION_CLOSED' && l.call_id === callId);
    const sent = (closed.attributes as Record<string, number>)['rtp.packets_out']!;
    const ours = await eventually(() => {
      for (const s of phone.sources.values()) if (!s.internal && s['received-bye'] === true) return s;
      return undefined;
    }, 5000);
    await phone.stop();
    assert.equal(ours['have-sr'], true);
    assert.equal(Number(ours['sr-packet-count']), Number(ours['packets-received']), 'the service\'s last SR counts every packet GStreamer received from it');
    assert.equal(Number(ours['sr-packet-count']), sent, 'and every packet the service sent');
    assert.equal(Number(ours['sr-octet-count']), sent * 160, 'payload octets (RFC 3550 6.4.1), without headers or SRTP tags');
    return ours;
  };

  test('plain RTP: GStreamer takes the service\'s SR and RR; the service\'s figures for GStreamer\'s stream are what it sent; RTT on loopback', async (t) => {
    const { port, phone, localPort, callId } = await call();
    try {
      // GStreamer's payloader sends one packet per buffer of audiotestsrc (num-buffers=PACKETS).
      await eventually(async () => Number((await quality(port)).inbound.packets) === PACKETS, 20_000, 100);
      // The service reports every 2.5-7.5 s (RFC 3550's randomised interval), GStreamer about once a second: a round trip is the service's next SR and GStreamer's report after it.
      await eventually(async () => (await quality(port)).remote.has_rtt, 25_000, 100);
      const first = await quality(port);
      // rtpsession keeps the last report block a source sent about us on that source's stats.
      const gotRb = await eventually(() => (phone.sources.get(first.outbound.ssrc)?.['have-rb'] === true ? phone.sources.get(first.outbound.ssrc) : undefined), 10_000, 50);
      await sleep(300);
      const q = await quality(port);
      const mine = own(phone)!;
      t.diagnostic(`service: ${JSON.stringify(q)}`);
      t.diagnostic(`GStreamer's own source: ${JSON.stringify(mine)}`);
      // The service's count of GStreamer's stream is what its payloader sent, packet for packet
      // (its rtpsession's packets-sent is a snapshot that may not have counted the last packet
      // or two yet: its SR is what counts).
      assert.equal(Number(q.inbound.packets), PACKETS);
      assert.ok(Number(mine['packets-sent']) >= PACKETS - 5, `GStreamer counted ${String(mine['packets-sent'])} packets sent`);
      assert.equal(Number(q.inbound.lost), 0);
      assert.equal(q.inbound.ssrc, PHONE_SSRC);
      assert.equal(q.remote.has_sender_report, true, 'GStreamer\'s SR was not read');
      assert.equal(Number(q.remote.sender_packets), Number(q.remote.received_at_sender_report));
      assert.match(q.remote.cname, /.+/, 'GStreamer\'s SDES CNAME');
      // rtpbin keeps RTCP on its RTP+1: the service answers there, from its own RTP+1.
      assert.deepEqual([q.rtcp.muxed, q.rtcp.local_port, q.rtcp.remote], [false, port + 1, `127.0.0.1:${localPort + 1}`]);
      // GStreamer's RR about the service's stream gives the service a round trip: loopback, ~0.
      assert.equal(q.remote.has_rtt, true);
      assert.ok(q.remote.rtt_ms >= 0 && q.remote.rtt_ms < 5, `RTT ${q.remote.rtt_ms} ms on loopback`);
      assert.equal(q.remote.has_report_of_ours, true);
      // GStreamer counts the service's stream from its first packet after probation: never loss.
      assert.ok(Number(q.remote.cumulative_lost) <= 0, `GStreamer reports ${q.remote.cumulative_lost} of the service's packets lost`);
      // The service's report block about GStreamer's stream, as GStreamer read it: nothing lost, and
      // a round trip (from the LSR/DLSR the service wrote) of a few ms at most, in 1/65536 s.
      t.diagnostic(`GStreamer's view of the service's source: ${JSON.stringify(gotRb)}`);
      assert.equal(gotRb!['have-rb'], true);
      assert.equal(Number(gotRb!['rb-packetslost']), 0);
      assert.ok(Number(gotRb!['rb-round-trip']) < 65536 * 0.005, `GStreamer's RTT from the service's report block: ${Number(gotRb!['rb-round-trip']) / 65.536} ms`);
      // GStreamer's view of the service's stream: an SR whose counts are consistent with what arrived.
      const theirs = phone.sources.get(q.outbound.ssrc);
      assert.ok(theirs, `GStreamer has no source for the service's SSRC ${q.outbound.ssrc}`);
      assert.equal(theirs['have-sr'], true, 'GStreamer took no SR from the service');
      assert.ok(Number(theirs['sr-packet-count']) > 0 && Number(theirs['sr-packet-count']) <= Number(theirs['packets-received']));
      const ours = await finish(port, callId, phone);
      t.diagnostic(`GStreamer's view of the service's stream at the end: ${JSON.stringify(ours)}`);
    } finally {
      await phone.stop();
    }
  });

  for (const suite of ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32', 'AEAD_AES_128_GCM'] as const) {
    test(`SRTCP ${suite} both ways with libsrtp: each reads the other's reports; tampered and replayed SRTCP refused and counted`, async (t) => {
      let cap: Awaited<ReturnType<typeof captureUdp>> | undefined;
      const { port, phone, callId, localPort } = await call(suite, async (p) => {
        cap = await captureUdp(p + 1);
      });
      try {
        // GStreamer's first SRTCP reached the service and was read.
        await eventually(async () => (await quality(port)).remote.reports >= 1, 10_000, 100);
        // GStreamer goes on reporting about once a second: a second capture spans the attack, so
        // what the service reads meanwhile can be held to what GStreamer sent.
        const during = await captureUdp(port + 1);
        const wire = (await cap!.stop()).filter((p) => p.dstPort === port + 1);
        assert.ok(wire.length >= 1, 'no SRTCP from GStreamer on the wire');
        const fromMs = Date.now();
        const before = await quality(port);
        const last = wire.at(-1)!.payload;
        const tagLength = suite.startsWith('AEAD') ? 16 : 10;
        const indexAt = suite.startsWith('AEAD') ? last.length - 4 : last.length - 4 - tagLength;
        t.diagnostic(`${wire.length} SRTCP packets from GStreamer captured; the last has index ${last.readUInt32BE(indexAt) & 0x7fffffff}, E ${last[indexAt]! >> 7}`);
        assert.equal(last[indexAt]! >> 7, 1, 'libsrtp encrypts SRTCP (E flag)');
        assert.equal(last.subarray(8, 16).equals(Buffer.alloc(8)), false);
        const attacker = createSocket('udp4');
        await new Promise<void>((r) => attacker.bind(0, '127.0.0.1', r));
        const send = (b: Buffer): Promise<void> => new Promise((r) => attacker.send(b, port + 1, '127.0.0.1', () => r()));
        // Replayed as captured, twice.
        await send(last);
        await send(last);
        // Tampered, each with an index the service has not seen (else it is refused as a replay first).
        const fresh = (): Buffer => {
          const b = Buffer.from(last);
          b.writeUInt32BE(((b.readUInt32BE(indexAt) + 1000) | 0x80000000) >>> 0, indexAt);
          return b;
        };
        const tampered = [fresh(), fresh(), fresh()];
        tampered[1]![12]! ^= 0x01; // a body byte
        tampered[2]![suite.startsWith('AEAD') ? last.length - 5 : last.length - 1]! ^= 0x80; // a tag byte
        for (const b of tampered) await send(b);
        attacker.close();
        await sleep(200);
        const mid = await quality(port);
        const toMs = Date.now();
        // GStreamer's own reports in the window (and in the 250 ms before it, which the service may
        // have read only after answering): the most the service may have read meanwhile.
        const legit = (await during.stop()).filter((p) => p.srcPort === localPort + 1 && p.dstPort === port + 1 && p.atMs >= fromMs - 250 && p.atMs < toMs + 1).length;
        t.diagnostic(`after the attack: rtcp ${JSON.stringify(mid.rtcp)}; reports read ${mid.remote.reports - before.remote.reports}, GStreamer sent ${legit}`);
        assert.equal(mid.rtcp.srtcp, true);
        assert.equal(mid.rtcp.srtcp_replays - before.rtcp.srtcp_replays, 2);
        assert.equal(mid.rtcp.srtcp_auth_failures - before.rtcp.srtcp_auth_failures, 3);
        assert.ok(mid.remote.reports - before.remote.reports <= legit, 'a refused packet was read');
        // GStreamer's own SRTCP still reads afterwards, and its figures match.
        // The service's report reaches GStreamer and GStreamer answers about it: a round trip.
        // The service reports every 2.5-7.5 s (RFC 3550's randomised interval), GStreamer about once a second: a round trip is the service's next SR and GStreamer's report after it.
        await eventually(async () => (await quality(port)).remote.has_rtt, 25_000, 100);
        await eventually(async () => Number((await quality(port)).inbound.packets) === PACKETS, 20_000, 100);
        await eventually(async () => (await quality(port)).remote.reports > mid.remote.reports, 10_000, 100);
        await sleep(300);
        const q = await quality(port);
        t.diagnostic(`service: ${JSON.stringify(q)}`);
        assert.equal(Number(q.inbound.packets), PACKETS);
        assert.equal(Number(q.inbound.lost), 0);
        assert.equal(q.remote.has_sender_report, true);
        assert.equal(Number(q.remote.sender_packets), Number(q.remote.received_at_sender_report));
        assert.equal(q.remote.has_rtt, true);
        assert.ok(q.remote.rtt_ms < 5, `RTT ${q.remote.rtt_ms} ms`);
        // The service's SRTCP went through srtpdec: GStreamer holds its SR and its report block.
        const theirs = phone.sources.get(q.outbound.ssrc);
        t.diagnostic(`GStreamer's view of the service's source: ${JSON.stringify(theirs)}`);
        assert.equal(theirs?.['have-sr'], true, 'GStreamer read no SR from the service\'s SRTCP');
        assert.equal(theirs?.['have-rb'], true, 'GStreamer read no report block from the service\'s SRTCP');
        assert.equal(Number(theirs['rb-packetslost']), 0);
        const m = await (await fetch(svc.url('/metrics'))).text();
        assert.ok((metricValue(m, 'sentiric_media_srtcp_replays_total') ?? 0) >= 2);
        assert.ok((metricValue(m, 'sentiric_media_srtcp_auth_failures_total') ?? 0) >= 3);
        const ours = await finish(port, callId, phone);
        t.diagnostic(`GStreamer's view of the service's stream at the end: ${JSON.stringify(ours)}`);
      } finally {
        await phone.stop();
      }
    });
  }
});
