// Shards: what a stream through the one gRPC address costs against one sent to its shard's
// private socket; in-spec AI calls with one shard and with two; failover time after kill -9.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { startService, type RunningService } from '../test/helpers/service.ts';
import { TestClient } from '../test/helpers/grpc-client.ts';
import { RtpPeer } from '../test/helpers/rtp-peer.ts';
import { loadProtos } from '../src/grpc/proto.ts';
import { cpuSeconds, median, percentile } from './lib/proc.ts';
import { ask, BENCH_RTP, benchEnv, every } from './lib/harness.ts';
import { WireCapture } from './lib/wire-cadence.ts';

type Stream = grpc.ClientReadableStream<unknown>;
type Duplex = grpc.ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;
interface ShardInfo {
  index: number;
  pid: number;
  grpcSocket: string;
  rtp: [number, number];
}

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const protos = loadProtos();

async function shardsOf(svc: RunningService): Promise<ShardInfo[]> {
  const d = (await (await fetch(svc.url('/debug/resources'))).json()) as { shards: ShardInfo[] };
  return d.shards;
}

function cpuOf(pids: number[]): number {
  return pids.reduce((s, p) => s + cpuSeconds(p), 0);
}

/** BENCH_CPU_PROF=dir writes a V8 CPU profile of every service process (stopped with SIGTERM). */
const profiled = (): Record<string, string> => (process.env.BENCH_CPU_PROF ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-interval=${process.env.BENCH_CPU_PROF_US ?? 1000} --cpu-prof-dir=${process.env.BENCH_CPU_PROF}` } : {});

/** Client connections the calls are spread over (a platform's replicas), each call's requests on one. */
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 4);

interface DoorInfo {
  pid: number | null;
}

/**
 * The same forks, over the same client connections, opened through the gRPC address and
 * straight to each call's shard's private socket. `frontDoors`: processes relaying every
 * request (0: the shards hold the connections, serving their own calls' requests).
 */
async function relayCost(forks: number, frontDoors: number): Promise<Record<string, unknown>> {
  const svc = await startService({
    env: benchEnv({ MEDIA_SHARDS: '2', MEDIA_FRONT_DOORS: String(frontDoors), MEDIASOUP_NUM_WORKERS: '2', ADMISSION_MAX_CPU: '0', ADMISSION_MAX_LOOP_LAG_MS: '0', ...profiled() }),
  });
  // Each client keeps its own connection (grpc-js shares one per address otherwise).
  const fronts = Array.from({ length: CONNECTIONS }, () => new TestClient(svc.grpcPort, undefined, { 'grpc.use_local_subchannel_pool': 1 }));
  const shards = await shardsOf(svc);
  const doorPids = ((await (await fetch(svc.url('/debug/resources'))).json()) as { front_doors: DoorInfo[] }).front_doors.map((d) => d.pid!);
  const direct = shards.map((s) => new protos.media(`unix:${s.grpcSocket}`, grpc.credentials.createInsecure()));
  const gen = fork(fileURLToPath(new URL('./lib/load-generator.ts', import.meta.url)), { stdio: 'inherit' });
  const ports: number[] = [];
  for (let i = 0; i < forks; i++) {
    const a = await fronts[i % CONNECTIONS]!.media_<{ rtp_port: number }>('AllocatePort', { call_id: `relay-${i}` });
    if (!a.response) throw new Error(`AllocatePort: ${a.error?.details}`);
    ports.push(a.response.rtp_port);
    await ask(gen, { cmd: 'add', target: a.response.rtp_port });
  }
  await ask(gen, { cmd: 'send' });
  const shardOf = (port: number): number => shards.find((s) => port >= s.rtp[0] && port <= s.rtp[1])!.index;
  const out: Record<string, unknown> = { forks, client_connections: CONNECTIONS, front_door_processes: frontDoors };
  for (const mode of ['address', 'direct'] as const) {
    const clientOf = (k: number): grpc.Client => (mode === 'direct' ? direct[shardOf(ports[k]!)]! : fronts[k % CONNECTIONS]!.media);
    let frames = 0;
    const streams = ports.map((port, k) => {
      const s = (clientOf(k) as unknown as Record<string, (r: unknown) => Stream>).RecordAudio!({ server_rtp_port: port, target_sample_rate: 16000 });
      s.on('data', () => frames++);
      s.on('error', () => {});
      return s;
    });
    await sleep(2000);
    const sup0 = cpuSeconds(svc.proc.pid!);
    const doors0 = cpuOf(doorPids);
    const sh0 = cpuOf(shards.map((s) => s.pid));
    const self0 = process.cpuUsage();
    const f0 = frames;
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const wall = (performance.now() - t0) / 1000;
    const n = frames - f0;
    const self = process.cpuUsage(self0);
    const sup = cpuSeconds(svc.proc.pid!) - sup0;
    const doors = cpuOf(doorPids) - doors0;
    const sh = cpuOf(shards.map((s) => s.pid)) - sh0;
    for (const s of streams) s.cancel();
    // Unary round trips of an idempotent AllocatePort, one at a time.
    const rtt: number[] = [];
    for (let k = 0; k < 500; k++) {
      const i = k % ports.length;
      const t = performance.now();
      await new Promise<void>((resolve, reject) =>
        (clientOf(i) as unknown as Record<string, (r: unknown, cb: (e: Error | null) => void) => void>).AllocatePort!({ call_id: `relay-${i}` }, (e) => (e ? reject(e) : resolve())),
      );
      rtt.push(performance.now() - t);
    }
    rtt.sort((a, b) => a - b);
    out[mode] = {
      frames_per_s: Math.round(n / wall),
      'supervisor_cpu_%': +((sup / wall) * 100).toFixed(1),
      ...(frontDoors > 0 ? { 'front_doors_cpu_%': +((doors / wall) * 100).toFixed(1) } : {}),
      'shards_cpu_%': +((sh / wall) * 100).toFixed(1),
      'client_cpu_%': +(((self.user + self.system) / 1e6 / wall) * 100).toFixed(1),
      'allocate_rtt_p50/p99_ms': `${percentile(rtt, 0.5).toFixed(3)}/${percentile(rtt, 0.99).toFixed(3)}`,
      relay_processes_us_per_frame: +((((sup + doors) * 1e6) / Math.max(1, n))).toFixed(2),
    };
    await sleep(500);
  }
  gen.send({ cmd: 'stop' });
  for (const d of direct) d.close();
  for (const f of fronts) f.close();
  await svc.stop(process.env.BENCH_CPU_PROF ? 'SIGTERM' : 'SIGKILL');
  return out;
}

/** Each shard's event-loop delay p95 as it last reported it (what admission reads). */
async function shardLoads(svc: RunningService): Promise<number[]> {
  const d = (await (await fetch(svc.url('/debug/resources'))).json()) as { shards: { load: { loopLagMs: number } }[] };
  return d.shards.map((s) => s.load.loopLagMs);
}

/** GC time and pauses of 10 ms or more, summed over the instance's processes, from its /metrics. */
async function gcOf(svc: RunningService): Promise<{ seconds: number; long: number }> {
  const text = await (await fetch(svc.url('/metrics'))).text();
  let seconds = 0;
  let count = 0;
  let short = 0;
  for (const line of text.split('\n')) {
    const m = /^sentiric_media_nodejs_gc_duration_seconds_(sum|count|bucket)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    if (m[1] === 'sum') seconds += Number(m[3]);
    else if (m[1] === 'count') count += Number(m[3]);
    else if (m[2]!.includes('le="0.01"')) short += Number(m[3]);
  }
  return { seconds, long: count - short };
}

/** The machine's CPU time stolen by its hypervisor, in jiffies (the 8th field of /proc/stat's cpu line). */
function stealJiffies(): { steal: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
}

/** AI calls: RTP in, a 16 kHz fork, 100 ms of TTS every 100 ms paced out by the service. */
async function aiCalls(shardCount: number, n: number, frontDoors = 0): Promise<Record<string, unknown>> {
  const svc = await startService({
    env: benchEnv({
      MEDIA_SHARDS: String(shardCount),
      MEDIA_FRONT_DOORS: String(frontDoors),
      MEDIASOUP_NUM_WORKERS: String(shardCount),
      ADMISSION_MAX_CPU: '0',
      ADMISSION_MAX_LOOP_LAG_MS: '0',
      ...profiled(),
    }),
  });
  // Each client keeps its own connection (grpc-js shares one per address otherwise).
  const clients = Array.from({ length: CONNECTIONS }, () => new TestClient(svc.grpcPort, undefined, { 'grpc.use_local_subchannel_pool': 1 }));
  const gen = fork(fileURLToPath(new URL('./lib/load-generator.ts', import.meta.url)), { stdio: 'inherit' });
  const streams: Stream[] = [];
  const injections: Duplex[] = [];
  const tts = Buffer.from(Int16Array.from({ length: 1600 }, (_, i) => Math.round(3000 * Math.sin(i / 7))).buffer);
  for (let i = 0; i < n; i++) {
    const callId = `ai-${i}`;
    const client = clients[i % CONNECTIONS]!;
    const a = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId });
    if (!a.response) throw new Error(`AllocatePort: ${a.error?.details}`);
    const port = a.response.rtp_port;
    const { port: phone } = await ask<{ port: number }>(gen, { cmd: 'add', target: port });
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: `127.0.0.1:${phone}` });
    const s = (client.media as unknown as Record<string, (r: unknown) => Stream>).RecordAudio!({ server_rtp_port: port, target_sample_rate: 16000 });
    s.on('data', () => {});
    s.on('error', () => {});
    streams.push(s);
    const inj = (client.media as unknown as Record<string, () => Duplex>).StreamAudioToCall!();
    inj.on('data', () => {});
    inj.on('error', () => {});
    inj.write({ call_id: callId, audio_chunk: Buffer.alloc(0) });
    injections.push(inj);
  }
  // 300 ms ahead of real time, then 100 ms every 100 ms.
  for (const inj of injections) for (let k = 0; k < 3; k++) inj.write({ audio_chunk: tts });
  // BENCH_TTS_PHASES: k spreads the calls over k phases of the 100 ms, as TTS of calls that
  // started at random times arrives (10, as the ai-calls bench); 1 writes every call's chunk
  // in one burst (the worst case).
  const phases = Math.max(1, Math.min(10, Number(process.env.BENCH_TTS_PHASES ?? 10)));
  let phase = 0;
  const feeder = every(100 / phases, () => {
    for (let i = phase; i < injections.length; i += phases) injections[i]!.write({ audio_chunk: tts });
    phase = (phase + 1) % phases;
  });
  await ask(gen, { cmd: 'send' });
  await sleep(3000);
  const doorPids = shardCount > 1 ? ((await (await fetch(svc.url('/debug/resources'))).json()) as { front_doors: DoorInfo[] }).front_doors.map((d) => d.pid!) : [];
  const pids = shardCount > 1 ? [svc.proc.pid!, ...(await shardsOf(svc)).map((s) => s.pid), ...doorPids] : [svc.proc.pid!];
  const wire = await WireCapture.start(...BENCH_RTP);
  const gc0 = await gcOf(svc);
  const steal0 = stealJiffies();
  const cpu0 = cpuOf(pids);
  const sup0 = cpuSeconds(svc.proc.pid!);
  const doors0 = cpuOf(doorPids);
  const genCpu0 = cpuSeconds(gen.pid!);
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  // What admission control reads: each shard's event-loop delay p95 over its last half second, sampled through the window.
  const lags: number[] = [];
  const sampling = shardCount > 1 ? setInterval(() => void shardLoads(svc).then((l) => lags.push(...l), () => {}), 1000) : undefined;
  const out = await ask<{ received: number; expected: number; seqGaps: number; p50: number; p99: number }>(gen, { cmd: 'measure', seconds });
  clearInterval(sampling);
  const wall = (performance.now() - t0) / 1000;
  const onWire = await wire.stop();
  const gc1 = await gcOf(svc);
  const steal1 = stealJiffies();
  const cpu = (cpuOf(pids) - cpu0) / wall;
  const sup = (cpuSeconds(svc.proc.pid!) - sup0) / wall;
  const doors = (cpuOf(doorPids) - doors0) / wall;
  const genCpu = (cpuSeconds(gen.pid!) - genCpu0) / wall;
  const self = process.cpuUsage(self0);
  feeder.stop();
  for (const s of streams) s.cancel();
  for (const i of injections) i.cancel();
  gen.send({ cmd: 'stop' });
  for (const c of clients) c.close();
  await svc.stop(process.env.BENCH_CPU_PROF ? 'SIGTERM' : 'SIGKILL');
  return {
    shards: shardCount,
    front_door_processes: frontDoors,
    client_connections: CONNECTIONS,
    ai_calls: n,
    'service_cpu_%': +(cpu * 100).toFixed(1),
    'service_cpu_%_per_call': +((cpu * 100) / n).toFixed(3),
    ...(shardCount > 1 ? { 'of_which_supervisor_%': +(sup * 100).toFixed(1), 'of_which_front_doors_%': +(doors * 100).toFixed(1) } : {}),
    'load_generator_cpu_%': +(genCpu * 100).toFixed(1),
    'grpc_client_cpu_%': +(((self.user + self.system) / 1e6 / wall) * 100).toFixed(1),
    out_received_vs_expected: `${out.received}/${out.expected}`,
    out_seq_gaps: out.seqGaps,
    'out_interval_p50/p99_ms': `${out.p50.toFixed(1)}/${out.p99.toFixed(1)}`,
    // The same packets as sent, from a kernel-timestamped capture: no load generator's loop in it.
    'wire_interval_p50/p99_ms': `${onWire.p50.toFixed(1)}/${onWire.p99.toFixed(1)}`,
    'wire_out_of_20±5_%': +(onWire.outOfSpec * 100).toFixed(2),
    wire_streams: onWire.streams,
    ...(lags.length > 0 ? { 'shard_loop_delay_p95_median/max_ms': `${median(lags).toFixed(1)}/${Math.max(...lags).toFixed(1)}` } : {}),
    'gc_ms_per_s': +(((gc1.seconds - gc0.seconds) * 1000) / wall).toFixed(2),
    gc_pauses_over_10ms: gc1.long - gc0.long,
    'machine_steal_%': +((100 * (steal1.steal - steal0.steal)) / Math.max(1, steal1.total - steal0.total)).toFixed(2),
  };
}

/** kill -9 of the shard carrying an echo call: time until the phone hears the service again. */
async function failover(kills: number): Promise<Record<string, unknown>> {
  const svc = await startService({ env: benchEnv({ MEDIA_SHARDS: '2', MEDIASOUP_NUM_WORKERS: '2' }) });
  const client = new TestClient(svc.grpcPort);
  const phone = await RtpPeer.open();
  const port = (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: 'failover' })).response!.rtp_port;
  await client.media_('PlayAudio', { audio_uri: 'control://enable_echo', server_rtp_port: port, rtp_target_addr: phone.address });
  const second = Int16Array.from({ length: 8000 }, (_, i) => Math.round(5000 * Math.sin(i / 3)));
  let talk = true;
  const talking = (async () => {
    while (talk) await phone.sendPcm(second, port);
  })();
  const times: number[] = [];
  let sameStream = 0;
  await sleep(1500);
  for (let k = 0; k < kills; k++) {
    const shard = (await shardsOf(svc)).find((s) => port >= s.rtp[0] && port <= s.rtp[1])!;
    const before = phone.received.at(-1)!;
    const at = performance.now();
    process.kill(shard.pid, 'SIGKILL');
    await sleep(100);
    while (performance.now() - at < 10_000) {
      const last = phone.received.at(-1)!;
      if (last.at > at + 50) {
        const first = phone.received.find((p) => p.at > at + 50)!;
        times.push(first.at - at);
        if (first.ssrc === before.ssrc && ((first.seq - before.seq) & 0xffff) < 1000) sameStream++;
        break;
      }
      await sleep(5);
    }
    // Let the restarted shard settle: one that dies within 2 s of its start counts as a crash loop.
    await sleep(3000);
  }
  talk = false;
  await talking;
  phone.close();
  client.close();
  await svc.stop('SIGKILL');
  times.sort((a, b) => a - b);
  return { kills, heard_again: times.length, same_ssrc_continuing_seq: sameStream, 'kill_to_first_packet_median_ms': +median(times).toFixed(0), 'worst_ms': +times.at(-1)!.toFixed(0), all_ms: times.map((t) => Math.round(t)) };
}

console.log(`shards benchmark: ${seconds} s per measurement on ${(await import('node:os')).availableParallelism()} cores; the load generator and the gRPC client run on the same machine`);
// BENCH_SHARDS_PARTS=relay,ai,failover picks parts.
const parts = (process.env.BENCH_SHARDS_PARTS ?? 'relay,ai,failover').split(',');
if (parts.includes('relay')) {
  // BENCH_FRONT_DOORS: the front-door process counts compared (0: the shards hold the connections).
  for (const doors of (process.env.BENCH_FRONT_DOORS ?? '0,2').split(',').map(Number)) console.log(JSON.stringify(await relayCost(Number(process.env.BENCH_FORKS ?? 100), doors)));
}
if (parts.includes('ai')) {
  for (const n of (process.env.BENCH_AI_CALLS ?? '100,200').split(',').map(Number)) {
    const rows: Record<string, unknown>[] = [];
    // BENCH_AI_SETUPS: shards:front doors of each row, one shard's first (the reference).
    const setups = (process.env.BENCH_AI_SETUPS ?? '1:0,2:0,2:1').split(',').map((p) => p.split(':').map(Number) as [number, number]);
    for (const [shards, doors] of setups) {
      const row = await aiCalls(shards, n, doors);
      rows.push(row);
      console.log(JSON.stringify(row));
    }
    // Capacity is CPU-bound: with a core per shard, N shards carry N / (their CPU per call over one shard's) times as many calls.
    const one = rows[0]!['service_cpu_%_per_call'] as number;
    for (const r of rows.slice(1)) {
      const ratio = one / (r['service_cpu_%_per_call'] as number);
      console.log(JSON.stringify({ ai_calls: n, shards: r['shards'], front_door_processes: r['front_door_processes'], cpu_per_call_vs_one_shard: +(1 / ratio).toFixed(3), 'projected_capacity_x_N_one_shard': +ratio.toFixed(3) }));
    }
  }
}
if (parts.includes('failover')) console.log(JSON.stringify(await failover(Number(process.env.BENCH_KILLS ?? 10))));
