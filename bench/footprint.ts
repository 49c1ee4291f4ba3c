// What the service holds in memory: the Node process right after start (mediasoup workers
// apart), per idle call, and after calls came and went. One process (MEDIA_SHARDS=1), the
// embedded defaults otherwise (no S3, RabbitMQ or Redis configured). BENCH_FOOTPRINT_CALLS sets
// how many idle calls are held (default 800); BENCH_FOOTPRINT_ROUNDS how many times they come
// and go before the last reading (default 3).
import { execFileSync } from 'node:child_process';
import { startService } from '../test/helpers/service.ts';
import { TestClient } from '../test/helpers/grpc-client.ts';
import { benchEnv } from './lib/harness.ts';
import { rssBytes } from './lib/proc.ts';

const calls = Number(process.env.BENCH_FOOTPRINT_CALLS ?? 800);
const rounds = Number(process.env.BENCH_FOOTPRINT_ROUNDS ?? 3);
const mb = (b: number): number => +(b / 2 ** 20).toFixed(1);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Child processes of the service (mediasoup workers, the decode thread is inside). */
function children(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const svc = await startService({ env: benchEnv({ MEDIA_SHARDS: '1', RTP_SERVICE_PORT_QUARANTINE_SECONDS: '0' }) });
const pid = svc.proc.pid!;
await sleep(3000);
const justStarted = rssBytes(pid);
// Settled: after the idle compaction a service runs once it has been idle a whole check (10 s).
await sleep(22_000);
const start = rssBytes(pid);
const workers = children(pid).map(rssBytes);
const client = new TestClient(svc.grpcPort);
let perCall = 0;
let peak = start;
for (let r = 0; r < rounds; r++) {
  const before = rssBytes(pid);
  const ports: number[] = [];
  for (let i = 0; i < calls; i++) {
    const a = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: `footprint-${r}-${i}` });
    if (!a.response) throw new Error(`AllocatePort: ${a.error?.details}`);
    ports.push(a.response.rtp_port);
  }
  await sleep(1000);
  const held = rssBytes(pid);
  peak = Math.max(peak, held);
  if (r === 0) perCall = (held - before) / calls;
  for (const p of ports) await client.media_('ReleasePort', { rtp_port: p });
  await sleep(1000);
}
// The service compacts once it has been idle for a whole check (10 s) after calls: wait for it.
await sleep(25_000);
const after = rssBytes(pid);
client.close();
await svc.stop('SIGKILL');
console.log(
  JSON.stringify({
    node_rss_3s_after_start_mb: mb(justStarted),
    node_rss_settled_mb: mb(start),
    mediasoup_workers: workers.length,
    worker_rss_mb: workers.map(mb),
    idle_call_kb: Math.round(perCall / 1024),
    calls_held: calls,
    rounds,
    peak_rss_mb: mb(peak),
    rss_after_calls_left_mb: mb(after),
    'after_vs_settled_%': +(((after - start) / start) * 100).toFixed(1),
  }),
);
