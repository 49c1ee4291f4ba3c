// Live audio: fork latency (RTP arrival -> gRPC frame written, measured in the service by
// sentiric_media_fork_latency_seconds) at 1, 50 and 200 forked calls; injection latency
// (chunk sent -> first RTP packet at the phone); CPU per forked + injected call.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import { startService } from '../test/helpers/service.ts';
import { TestClient } from '../test/helpers/grpc-client.ts';
import { RtpPeer } from '../test/helpers/rtp-peer.ts';
import { cpuSeconds, percentile } from './lib/proc.ts';
import { ask, benchEnv, every } from './lib/harness.ts';
import { histogramQuantile, scrapeBuckets } from './lib/histogram.ts';

const levels = (process.env.BENCH_FORKS ?? '1,50,200').split(',').map(Number);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);

type Stream = grpc.ClientReadableStream<unknown>;
type Duplex = grpc.ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;

async function forkLevel(n: number): Promise<Record<string, unknown>> {
  const svc = await startService({ env: benchEnv() });
  const client = new TestClient(svc.grpcPort);
  const gen = fork(fileURLToPath(new URL('./lib/load-generator.ts', import.meta.url)), { stdio: 'inherit' });
  const streams: Stream[] = [];
  const injections: Duplex[] = [];
  let frames = 0;
  const silence = Buffer.alloc(640 * 5);
  for (let i = 0; i < n; i++) {
    const callId = `fork-${i}`;
    const alloc = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId });
    if (!alloc.response) throw new Error(`AllocatePort: ${alloc.error?.details}`);
    const port = alloc.response.rtp_port;
    const { port: phone } = await ask<{ port: number }>(gen, { cmd: 'add', target: port });
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: `127.0.0.1:${phone}` });
    const s = (client.media as unknown as Record<string, (r: unknown) => Stream>).RecordAudio!({ server_rtp_port: port, target_sample_rate: 16000 });
    s.on('data', () => frames++);
    s.on('error', () => {});
    streams.push(s);
    // Each call also speaks: 100 ms of TTS every 100 ms, as a TTS engine streaming in real time.
    const inj = (client.media as unknown as Record<string, () => Duplex>).StreamAudioToCall!();
    inj.on('data', () => {});
    inj.on('error', () => {});
    inj.write({ call_id: callId, audio_chunk: Buffer.alloc(0) });
    injections.push(inj);
  }
  const feeder = every(100, () => {
    for (const inj of injections) inj.write({ audio_chunk: silence });
  });
  await ask(gen, { cmd: 'send' });
  await new Promise((r) => setTimeout(r, 3000));
  const m0 = await (await fetch(svc.url('/metrics'))).text();
  const cpu0 = cpuSeconds(svc.proc.pid!);
  const f0 = frames;
  const t0 = performance.now();
  const out = await ask<{ received: number; expected: number; seqGaps: number; p99: number }>(gen, { cmd: 'measure', seconds });
  const wall = (performance.now() - t0) / 1000;
  const cpu = (cpuSeconds(svc.proc.pid!) - cpu0) / wall;
  const m1 = await (await fetch(svc.url('/metrics'))).text();
  feeder.stop();
  const b0 = scrapeBuckets(m0, 'sentiric_media_fork_latency_seconds');
  const b1 = scrapeBuckets(m1, 'sentiric_media_fork_latency_seconds');
  for (const s of streams) s.cancel();
  for (const i of injections) i.cancel();
  gen.send({ cmd: 'stop' });
  client.close();
  await svc.stop('SIGKILL');
  return {
    forked_calls: n,
    'fork_latency_p50_ms': +(histogramQuantile(b0, b1, 0.5) * 1000).toFixed(3),
    'fork_latency_p99_ms': +(histogramQuantile(b0, b1, 0.99) * 1000).toFixed(3),
    frames_per_s: Math.round((frames - f0) / wall),
    'cpu_%_per_forked_injected_call': +((cpu * 100) / n).toFixed(3),
    out_received_vs_expected: `${out.received}/${out.expected}`,
    out_seq_gaps: out.seqGaps,
  };
}

async function injectionLatency(samples: number): Promise<Record<string, unknown>> {
  // benchEnv: no inactivity timeout (the peer only listens; a run takes longer than 30 s).
  const svc = await startService({ env: benchEnv() });
  const client = new TestClient(svc.grpcPort);
  const peer = await RtpPeer.open();
  const port = (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: 'inj' })).response!.rtp_port;
  await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: peer.address });
  const inj = (client.media as unknown as Record<string, () => Duplex>).InjectAudio!();
  const ready = new Promise((r) => inj.once('data', r));
  inj.on('error', () => {});
  inj.write({ start: { server_rtp_port: port, sample_rate: 16000 } });
  await ready;
  const chunk = Buffer.from(Int16Array.from({ length: 1600 }, (_, i) => Math.round(6000 * Math.sin(i / 5))).buffer);
  const lat: number[] = [];
  for (let k = 0; k < samples; k++) {
    const before = peer.received.length;
    const t0 = performance.now();
    inj.write({ audio: chunk });
    while (peer.received.length === before) {
      if (performance.now() - t0 > 2000) throw new Error(`no RTP within 2 s of injection ${k}`);
      await new Promise((r) => setImmediate(r));
    }
    lat.push(peer.received[before]!.at - t0);
    // Let the 100 ms chunk play out so the next one starts a new talk spurt, at a random phase.
    await new Promise((r) => setTimeout(r, 150 + Math.random() * 20));
  }
  inj.end();
  peer.close();
  client.close();
  await svc.stop('SIGKILL');
  lat.sort((a, b) => a - b);
  // Within each talk spurt: a steady 20 ms (as seen by this process), a marker only on its
  // first packet, and sequence numbers without a gap across spurts.
  const pk = peer.received;
  const within = pk.slice(1).flatMap((p, i) => (p.marker ? [] : [p.at - pk[i]!.at])).sort((a, b) => a - b);
  const seqGaps = pk.slice(1).filter((p, i) => ((p.seq - pk[i]!.seq) & 0xffff) !== 1).length;
  return {
    injection_samples: samples,
    'injection_latency_p50_ms': +percentile(lat, 0.5).toFixed(2),
    'injection_latency_p90_ms': +percentile(lat, 0.9).toFixed(2),
    'injection_latency_p99_ms': +percentile(lat, 0.99).toFixed(2),
    'injection_latency_max_ms': +lat.at(-1)!.toFixed(2),
    talk_spurts: pk.filter((p) => p.marker).length,
    in_spurt_interval_p1_p50_p99_ms: [0.01, 0.5, 0.99].map((q) => +percentile(within, q).toFixed(2)),
    seq_gaps: seqGaps,
  };
}

console.log(`live-audio benchmark: ${seconds} s per level`);
for (const n of levels) console.log(JSON.stringify(await forkLevel(n)));
console.log(JSON.stringify(await injectionLatency(Number(process.env.BENCH_INJECTIONS ?? 100))));
