// Injection latency, measured by a process of its own, as a text-to-speech service of the
// platform would be: its own gRPC connection and its own phone, not the loop of the client
// that also reads every call's fork. One call beside the load: 100 ms of speech written to a
// silent call, until its first RTP packet reaches the phone; each probe once the last has
// played out, at a random phase of the media clock. Told {grpcPort, probes, streamApi} over
// IPC, it answers {latencies} (sorted, ms) or {error}, then exits.
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { TestClient } from '../../test/helpers/grpc-client.ts';
import { RtpPeer } from '../../test/helpers/rtp-peer.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const tts = Buffer.from(Int16Array.from({ length: 1600 }, (_, i) => Math.round(3000 * Math.sin(i / 7))).buffer);

async function probe(grpcPort: number, probes: number, streamApi: boolean): Promise<number[] | string> {
  const client = new TestClient(grpcPort);
  const callId = `inj-probe-${process.pid}`;
  const allocated = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId });
  // A service past its admission limits takes no more calls: that is the finding, not a failure.
  if (!allocated.response) return `not measured: AllocatePort answered ${allocated.error?.details ?? 'nothing'}`;
  const port = allocated.response.rtp_port;
  const phone = await RtpPeer.open();
  await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: phone.address });
  const media = client.media as unknown as Record<string, () => Duplex>;
  const inj = streamApi ? media.InjectAudio!() : media.StreamAudioToCall!();
  const cancel = (): void => (inj as unknown as { cancel(): void }).cancel();
  inj.on('error', () => {});
  inj.on('data', () => {});
  inj.write(streamApi ? { start: { server_rtp_port: port, sample_rate: 16000 } } : { call_id: callId, audio_chunk: Buffer.alloc(0) });
  await sleep(300);
  const lat: number[] = [];
  for (let k = 0; k < probes; k++) {
    const before = phone.received.length;
    // The phone's own listener ran first: an RTCP report adds nothing to `received`.
    const heard = new Promise<number>((resolve) => {
      const onPacket = (): void => {
        if (phone.received.length === before) return;
        phone.socket.off('message', onPacket);
        resolve(performance.now());
      };
      phone.socket.on('message', onPacket);
    });
    const t0 = performance.now();
    inj.write(streamApi ? { audio: tts } : { audio_chunk: tts });
    lat.push((await heard) - t0);
    await sleep(150 + Math.random() * 20);
  }
  cancel();
  phone.close();
  await client.media_('ReleasePort', { rtp_port: port });
  client.close();
  return lat.sort((a, b) => a - b);
}

process.once('message', (m: { grpcPort: number; probes: number; streamApi: boolean }) => {
  probe(m.grpcPort, m.probes, m.streamApi).then(
    (r) => process.send!(typeof r === 'string' ? { error: r } : { latencies: r }, () => process.exit(0)),
    (e: unknown) => process.send!({ error: String(e) }, () => process.exit(1)),
  );
});
