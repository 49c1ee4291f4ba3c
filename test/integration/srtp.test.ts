import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually, metricValue } from '../helpers/grpc-client.ts';
import { speechFixtures, type SpeechFixtures } from '../helpers/audio.ts';
import { assertHoldsReference, describeMatch } from '../helpers/reference-match.ts';
import { ffmpegReceiveRtp, ffmpegSendRtp, freeUdpPort } from '../helpers/ffmpeg.ts';
import { captureUdp, type CapturedDatagram } from '../helpers/capture.ts';
import { encodeG711 } from '../../src/codecs/g711.ts';
import { generateKeyParams } from '../../src/rtp-bridge/srtp/sdes.ts';

interface SrtpParams {
  crypto_suite: string;
  key_params: string;
}

const RUN = 16;

/** Every 16-byte run of the fixture as PCMU: plaintext shows up whatever the packet framing. */
function plaintextRuns(pcm: Int16Array): Set<string> {
  const bytes = Buffer.from(encodeG711('PCMU', pcm));
  const runs = new Set<string>();
  for (let i = 0; i + RUN <= bytes.length; i++) {
    const run = bytes.subarray(i, i + RUN);
    // Runs of silence are not evidence of anything.
    if (new Set(run).size > 4) runs.add(run.toString('hex'));
  }
  return runs;
}

function leaksPlaintext(packets: CapturedDatagram[], runs: Set<string>): number {
  return packets.filter((p) => {
    for (let i = 12; i + RUN <= p.payload.length; i++) if (runs.has(p.payload.subarray(i, i + RUN).toString('hex'))) return true;
    return false;
  }).length;
}

for (const suite of ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32']) {
  describe(`SRTP ${suite} with ffmpeg as the phone`, () => {
    let svc: RunningService;
    let client: TestClient;
    let fx: SpeechFixtures;
    const tag = suite.endsWith('_80') ? 10 : 4;

    before(async () => {
      fx = speechFixtures();
      svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '35000', RTP_SERVICE_PORT_MAX: '35999' } });
      client = new TestClient(svc.grpcPort);
    });
    after(async () => {
      client.close();
      await svc.stop('SIGKILL');
    });

    test('both directions encrypted on the wire, decrypted at each end, audio intact', async (t) => {
      const theirs = generateKeyParams(suite as 'AES_CM_128_HMAC_SHA1_80');
      const a = await client.media_<{ rtp_port: number; srtp: SrtpParams }>('AllocatePort', { call_id: `srtp-${suite}`, srtp: { crypto_suite: suite, key_params: theirs } });
      assert.equal(a.error, undefined, a.error?.details);
      const port = a.response!.rtp_port;
      const ours = a.response!.srtp;
      assert.equal(ours.crypto_suite, suite);
      assert.match(ours.key_params, /^inline:[A-Za-z0-9+/]{40}$/);
      assert.notEqual(ours.key_params, theirs, 'each direction has its own key');

      const receiver = await ffmpegReceiveRtp({ codec: 'PCMU', crypto: { suite, keyParams: ours.key_params } });
      await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: `127.0.0.1:${receiver.port}` });
      await client.media_('PlayAudio', { audio_uri: 'control://enable_echo', server_rtp_port: port });
      const cap = await captureUdp(port);
      const sender = ffmpegSendRtp({ wav: fx.wav8k, port, codec: 'PCMU', localPort: await freeUdpPort(), srtp: { suite, params: theirs.slice('inline:'.length) } });
      assert.equal(await sender.done, 0, sender.stderr());
      await new Promise((r) => setTimeout(r, 300));
      const packets = await cap.stop();
      const got = await receiver.stop();

      t.diagnostic(describeMatch(assertHoldsReference(got, fx.pcm8k, 8000, { what: `the echo the far end decrypted (${suite})` })));
      const inbound = packets.filter((p) => p.dstPort === port && p.payload[1]! < 192);
      const outbound = packets.filter((p) => p.srcPort === port && p.payload[1]! < 192);
      assert.ok(inbound.length > 300 && outbound.length > 300, `captured ${inbound.length} in, ${outbound.length} out`);
      for (const p of [...inbound, ...outbound]) assert.equal(p.payload.length, 12 + 160 + tag, 'RTP header + 160 bytes + auth tag');
      const frames = plaintextRuns(fx.pcm8k);
      // The detector does see plaintext when it is there, at any offset.
      const plain = Buffer.from(encodeG711('PCMU', fx.pcm8k.subarray(8003, 8003 + 160)));
      assert.equal(leaksPlaintext([{ atMs: 0, srcPort: 0, dstPort: 0, payload: Buffer.concat([Buffer.alloc(12), plain, Buffer.alloc(tag)]) }], frames), 1);
      assert.equal(leaksPlaintext(inbound, frames), 0, 'no plaintext frame from the phone');
      assert.equal(leaksPlaintext(outbound, frames), 0, 'no plaintext frame to the phone');
      const m = await (await fetch(svc.url('/metrics'))).text();
      assert.equal(metricValue(m, 'sentiric_media_srtp_auth_failures_total'), 0);
      // ffmpeg sends SRTCP to RTP+1 (80-bit tag whatever the suite): its SR is read there.
      const q = await client.media_<{ rtcp: Record<string, unknown>; remote: Record<string, unknown>; inbound: { packets: string } }>('GetCallQuality', { server_rtp_port: port });
      t.diagnostic(`SRTCP from ffmpeg: rtcp ${JSON.stringify(q.response?.rtcp)}, remote ${JSON.stringify(q.response?.remote)}`);
      const r = q.response!.remote;
      assert.equal(q.response!.rtcp.srtcp, true);
      assert.equal(r.has_sender_report, true, 'ffmpeg\'s SRTCP sender report was not read');
      assert.ok(Number(r.sender_packets) > 100);
      assert.equal(Number(r.sender_packets), Number(r.received_at_sender_report));
      assert.equal(q.response!.rtcp.srtcp_auth_failures, 0);
      assert.equal(q.response!.rtcp.srtcp_replays, 0);
      assert.equal(metricValue(m, 'sentiric_media_srtcp_auth_failures_total'), 0);
      await client.media_('ReleasePort', { rtp_port: port });
    });

    test('a wrong key: every packet dropped and counted, the call stays up', async () => {
      const a = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: `srtp-bad-${suite}`, srtp: { crypto_suite: suite, key_params: generateKeyParams(suite as 'AES_CM_128_HMAC_SHA1_80') } });
      const port = a.response!.rtp_port;
      const before = metricValue(await (await fetch(svc.url('/metrics'))).text(), 'sentiric_media_srtp_auth_failures_total') ?? 0;
      const wrong = generateKeyParams(suite as 'AES_CM_128_HMAC_SHA1_80').slice('inline:'.length);
      const sender = ffmpegSendRtp({ wav: fx.wav8k, port, codec: 'PCMU', localPort: await freeUdpPort(), srtp: { suite, params: wrong } });
      assert.equal(await sender.done, 0, sender.stderr());
      const failures = await eventually(async () => {
        const v = metricValue(await (await fetch(svc.url('/metrics'))).text(), 'sentiric_media_srtp_auth_failures_total') ?? 0;
        return v - before > 300 ? v - before : undefined;
      });
      assert.ok(failures > 300, `${failures} packets refused`);
      const still = await client.media_<{ success: boolean }>('PlayAudio', { audio_uri: 'control://enable_echo', server_rtp_port: port });
      assert.equal(still.response?.success, true, 'the session is alive');
      await client.media_('ReleasePort', { rtp_port: port });
    });
  });
}

test('an unknown suite or a malformed key is refused with INVALID_ARGUMENT', async () => {
  const svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '35900', RTP_SERVICE_PORT_MAX: '35999' } });
  const client = new TestClient(svc.grpcPort);
  try {
    const a = await client.media_('AllocatePort', { call_id: 'x1', srtp: { crypto_suite: 'F8_128_HMAC_SHA1_80', key_params: 'inline:AAAA' } });
    assert.equal(a.error?.code, 3);
    assert.match(a.error!.details, /unsupported SRTP crypto suite/);
    const b = await client.media_('AllocatePort', { call_id: 'x2', srtp: { crypto_suite: 'AES_CM_128_HMAC_SHA1_80', key_params: 'inline:AAAA' } });
    assert.equal(b.error?.code, 3);
    assert.match(b.error!.details, /needs 30 bytes/);
  } finally {
    client.close();
    await svc.stop('SIGKILL');
  }
});
