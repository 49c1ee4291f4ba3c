// What the service holds in memory: the Node process right after start (mediasoup workers
// apart), per idle call, and after calls came and went. One process (MEDIA_SHARDS=1), the
// embedded defaults otherwise (no S3, RabbitMQ or Redis configured). BENCH_FOOTPRINT_CALLS sets
// how many idle calls are held (default 800); BENCH_FOOTPRINT_ROUNDS how many times they come
// and go before the last reading (default 3); BENCH_FOOTPRINT_KEEP how many of the last round
// stay a while (default 10), so the service is not idle: what it gives back while calls go
// on, before the compaction an idle service runs. Then the shape `npm start` runs by default (a
// supervisor and one shard per core, each with its workers), idle: RSS and PSS of every
// process (PSS shares the pages several processes map, the Node binary's above all, among
// them, so its total is what the processes take together). BENCH_FOOTPRINT_SHAPE=0 skips it.
import { startService } from '../test/helpers/service.ts';
import { TestClient } from '../test/helpers/grpc-client.ts';
import { benchEnv } from './lib/harness.ts';
import { childPids, commOf, pssBytes, rssBytes } from './lib/proc.ts';

const calls = Number(process.env.BENCH_FOOTPRINT_CALLS ?? 800);
const rounds = Number(process.env.BENCH_FOOTPRINT_ROUNDS ?? 3);
const keep = Number(process.env.BENCH_FOOTPRINT_KEEP ?? 10);
const mb = (b: number): number => +(b / 2 ** 20).toFixed(1);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** The process and every descendant (shards, mediasoup workers), each with its kind. */
function tree(pid: number, kind = 'supervisor'): { pid: number; kind: string }[] {
  return [{ pid, kind }, ...childPids(pid).flatMap((c) => tree(c, commOf(c).startsWith('mediasoup') ? 'worker' : 'shard'))];
}

async function oneProcess(): Promise<Record<string, unknown>> {
  const svc = await startService({ env: benchEnv({ MEDIA_SHARDS: '1', RTP_SERVICE_PORT_QUARANTINE_SECONDS: '0' }) });
  const pid = svc.proc.pid!;
  await sleep(3000);
  const justStarted = rssBytes(pid);
  // Settled: after the idle compaction a service runs once it has been idle a whole check (10 s).
  await sleep(22_000);
  const start = rssBytes(pid);
  const startPss = pssBytes(pid);
  const workers = childPids(pid);
  const workerRss = workers.map(rssBytes);
  const client = new TestClient(svc.grpcPort);
  let perCall = 0;
  let peak = start;
  let kept: number[] = [];
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
    if (r === rounds - 1) kept = ports.splice(0, keep);
    for (const p of ports) await client.media_('ReleasePort', { rtp_port: p });
    await sleep(1000);
  }
  await sleep(25_000);
  const withKept = rssBytes(pid);
  for (const p of kept) await client.media_('ReleasePort', { rtp_port: p });
  // The service compacts once it has been idle for a whole check (10 s) after calls: wait for it.
  await sleep(25_000);
  const after = rssBytes(pid);
  client.close();
  await svc.stop('SIGKILL');
  return {
    node_rss_3s_after_start_mb: mb(justStarted),
    node_rss_settled_mb: mb(start),
    node_pss_settled_mb: mb(startPss),
    mediasoup_workers: workers.length,
    worker_rss_mb: workerRss.map(mb),
    idle_call_kb: Math.round(perCall / 1024),
    calls_held: calls,
    rounds,
    peak_rss_mb: mb(peak),
    [`rss_25s_after_with_${keep}_calls_live_mb`]: mb(withKept),
    rss_after_calls_left_mb: mb(after),
    'after_vs_settled_%': +(((after - start) / start) * 100).toFixed(1),
  };
}

async function defaultShape(): Promise<Record<string, unknown>> {
  // Shards and workers as `npm start` has them (one shard per core, one worker per shard).
  const svc = await startService({ env: benchEnv({ MEDIA_SHARDS: 'auto', MEDIASOUP_NUM_WORKERS: '0' }) });
  const pid = svc.proc.pid!;
  const read = (): { kind: string; rss: number; pss: number }[] => tree(pid).map((p) => ({ kind: p.kind, rss: rssBytes(p.pid), pss: pssBytes(p.pid) }));
  const of = (ps: ReturnType<typeof read>, kind: string): number[] => ps.filter((p) => p.kind === kind).map((p) => p.rss);
  await sleep(3000);
  const justStarted = read();
  await sleep(22_000);
  const settled = read();
  await svc.stop('SIGTERM');
  return {
    shape: 'supervisor + shards (npm start)',
    shards: of(settled, 'shard').length,
    mediasoup_workers: of(settled, 'worker').length,
    total_rss_3s_after_start_mb: mb(sum(justStarted.map((p) => p.rss))),
    total_rss_settled_mb: mb(sum(settled.map((p) => p.rss))),
    total_pss_settled_mb: mb(sum(settled.map((p) => p.pss))),
    supervisor_rss_mb: mb(sum(of(settled, 'supervisor'))),
    shard_rss_mb: of(settled, 'shard').map(mb),
    worker_rss_mb: of(settled, 'worker').map(mb),
  };
}

console.log(JSON.stringify(await oneProcess()));
if (process.env.BENCH_FOOTPRINT_SHAPE !== '0') console.log(JSON.stringify(await defaultShape()));
