// Concurrent calls on one Node process: each call receives 50 packets/s of PCMU and sends
// a looping prompt. Prints, per level: CPU % per call, loss both ways, outbound interval
// percentiles, RSS per session, AllocatePort latency.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startService } from '../test/helpers/service.ts';
import { TestClient, metricValue } from '../test/helpers/grpc-client.ts';
import { speechFixtures } from '../test/helpers/audio.ts';
import { cpuSeconds, percentile, rssBytes } from './lib/proc.ts';
import { ask, benchEnv } from './lib/harness.ts';

const levels = (process.env.BENCH_CALLS ?? '100,250,500,750').split(',').map(Number);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);

async function level(n: number, prompt: string): Promise<Record<string, string | number>> {
  const svc = await startService({
    // BENCH_CPU_PROF=dir writes a V8 CPU profile of the service (stopped with SIGTERM).
    env: benchEnv(process.env.BENCH_CPU_PROF ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${process.env.BENCH_CPU_PROF}` } : {}),
  });
  const client = new TestClient(svc.grpcPort);
  const gen = fork(fileURLToPath(new URL('./lib/load-generator.ts', import.meta.url)), { stdio: 'inherit' });
  const pid = svc.proc.pid!;
  await new Promise((r) => setTimeout(r, 500));
  const rss0 = rssBytes(pid);
  const allocMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const a = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: `bench-${i}` });
    allocMs.push(performance.now() - t0);
    if (a.error) throw new Error(`AllocatePort ${i}: ${a.error.details}`);
    const { port } = await ask<{ port: number }>(gen, { cmd: 'add', target: a.response!.rtp_port });
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: a.response!.rtp_port, rtp_target_addr: `127.0.0.1:${port}` });
    // Enough prompts queued to play through warm-up and measurement without a pause.
    for (let k = 0; k < 6; k++) await client.media_('PlayAudio', { audio_uri: `file://${prompt}`, server_rtp_port: a.response!.rtp_port });
  }
  await ask(gen, { cmd: 'send' });
  await new Promise((r) => setTimeout(r, 3000));
  const m0 = metricValue(await (await fetch(svc.url('/metrics'))).text(), 'sentiric_media_rtp_packets_received_total') ?? 0;
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const out = await ask<{ received: number; expected: number; seqGaps: number; p50: number; p01: number; p99: number }>(gen, { cmd: 'measure', seconds });
  const wall = (performance.now() - t0) / 1000;
  const cpu = (cpuSeconds(pid) - cpu0) / wall;
  const m1 = metricValue(await (await fetch(svc.url('/metrics'))).text(), 'sentiric_media_rtp_packets_received_total') ?? 0;
  const rss = rssBytes(pid);
  gen.send({ cmd: 'stop' });
  client.close();
  await svc.stop(process.env.BENCH_CPU_PROF ? 'SIGTERM' : 'SIGKILL');
  allocMs.sort((a, b) => a - b);
  return {
    calls: n,
    'cpu_%_total': +(cpu * 100).toFixed(1),
    'cpu_%_per_call': +((cpu * 100) / n).toFixed(3),
    in_received_vs_sent: `${Math.round(m1 - m0)}/${Math.round(n * 50 * wall)}`,
    out_received_vs_expected: `${out.received}/${out.expected}`,
    out_seq_gaps: out.seqGaps,
    'out_interval_p1/p50/p99_ms': `${out.p01.toFixed(1)}/${out.p50.toFixed(1)}/${out.p99.toFixed(1)}`,
    rss_per_session_kb: Math.round((rss - rss0) / n / 1024),
    'allocate_p50/p99_ms': `${percentile(allocMs, 0.5).toFixed(2)}/${percentile(allocMs, 0.99).toFixed(2)}`,
  };
}

const fx = speechFixtures();
console.log(`calls benchmark: ${seconds} s per level, prompt ${fx.wav16k}`);
for (const n of levels) {
  const r = await level(n, fx.wav16k);
  console.log(JSON.stringify(r));
}
