// Conferences on one process: rooms of BENCH_CONF_SIZE G.711 phones (default 10) with
// BENCH_CONF_TALKERS talking at a time (default 2), at each participant count in
// BENCH_CONF_PARTICIPANTS. Prints per level: CPU per participant, loss and the cadence of
// what every participant receives, and the mix path's added latency (a probe pair in its
// own conference: silence, then speech; the time from the talker's first loud packet to the
// listener's first packet). In spec: nothing lost, outbound interval p1 >= 15 and p99 <= 25 ms.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startService } from '../test/helpers/service.ts';
import { TestClient, metricValue } from '../test/helpers/grpc-client.ts';
import { execFileSync } from 'node:child_process';
import { median, percentile, treeCpuSeconds } from './lib/proc.ts';
import { ask, benchEnv } from './lib/harness.ts';
import { encodeG711 } from '../src/codecs/g711.ts';
import { OpusFrameEncoder } from '../src/codecs/opus.ts';
import { captureUdp, type CapturedDatagram } from '../test/helpers/capture.ts';
import { randomBytes } from 'node:crypto';
import { FrameLink } from '../src/bridge/frame-link.ts';

/** Per spurt: the first loud packet into `servicePort` to the next packet arriving at `listenerPort`. */
function kernelLatencies(d: CapturedDatagram[], servicePort: number, listenerPort: number): number[] {
  const out: number[] = [];
  const pcmu = (x: CapturedDatagram): boolean => x.payload.length > 12 && (x.payload[1]! & 0x7f) === 0;
  let armed = false;
  let loudAt = 0;
  for (const x of d) {
    if (!pcmu(x)) continue;
    if (x.dstPort === servicePort) {
      const loud = x.payload.subarray(12).some((b) => b !== 0xff);
      if (!loud && loudAt === 0) armed = true;
      else if (loud && armed) {
        loudAt = x.atMs;
        armed = false;
      }
    } else if (x.dstPort === listenerPort && loudAt > 0) {
      out.push(x.atMs - loudAt);
      loudAt = 0;
    }
  }
  return out;
}

const levels = (process.env.BENCH_CONF_PARTICIPANTS ?? '100,200,300,400,500,600').split(',').map(Number);
const size = Number(process.env.BENCH_CONF_SIZE ?? 10);
const talkers = Number(process.env.BENCH_CONF_TALKERS ?? 2);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const PROBES = 4;
/** BENCH_CONF_SHARDS=2: the instance runs two shards; calls placed by load meet in conferences of either. */
const shards = Number(process.env.BENCH_CONF_SHARDS ?? 1);

async function level(participants: number): Promise<Record<string, string | number>> {
  const svc = await startService({
    env: benchEnv({
      ...(shards > 1 ? { MEDIA_SHARDS: String(shards), MEDIASOUP_NUM_WORKERS: String(shards), ADMISSION_MAX_CPU: '0', ADMISSION_MAX_LOOP_LAG_MS: '0' } : {}),
      ...(process.env.BENCH_CPU_PROF ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${process.env.BENCH_CPU_PROF}` } : {}),
    }),
  });
  const client = new TestClient(svc.grpcPort);
  const gen = fork(fileURLToPath(new URL('./lib/conference-load.ts', import.meta.url)), { stdio: 'inherit' });
  const pid = svc.proc.pid!;
  const rpc = async (method: string, req: object): Promise<{ rtp_port: number }> => {
    const r = await client.media_<{ rtp_port: number }>(method, req);
    if (r.error) throw new Error(`${method}: ${r.error.details}`);
    return r.response!;
  };
  const join = async (conf: string, id: string, role: { talker?: boolean; probe?: { index: number; role: 'talker' | 'listener'; phaseMs: number } }): Promise<{ service: number; phone: number }> => {
    const { rtp_port } = await rpc('AllocatePort', { call_id: id, codec: 'PCMU' });
    const { port } = await ask<{ port: number }>(gen, { cmd: 'add', target: rtp_port, ...role });
    await rpc('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: rtp_port, rtp_target_addr: `127.0.0.1:${port}` });
    await rpc('AddToConference', { conference_id: conf, server_rtp_port: rtp_port });
    return { service: rtp_port, phone: port };
  };
  const rooms = Math.ceil(participants / size);
  for (let r = 0; r < rooms; r++) {
    const conf = `bench-${r}`;
    await rpc('CreateConference', { conference_id: conf });
    for (let k = 0; k < size && r * size + k < participants; k++) await join(conf, `bench-${r}-${k}`, { talker: k < talkers });
  }
  // Four probe pairs, each in its own conference, their talkers 5 ms apart in phase.
  const probePorts: { talker: number; listener: number }[] = [];
  for (let k = 0; k < PROBES; k++) {
    await rpc('CreateConference', { conference_id: `probe-${k}` });
    // Phases 0, 7, 14, 1 ms: not in step with the order conferences take the clock's slots.
    const phaseMs = (k * 7) % 20;
    const talker = await join(`probe-${k}`, `probe-talker-${k}`, { probe: { index: k, role: 'talker', phaseMs } });
    const listener = await join(`probe-${k}`, `probe-listener-${k}`, { probe: { index: k, role: 'listener', phaseMs } });
    probePorts.push({ talker: talker.service, listener: listener.phone });
  }
  await ask(gen, { cmd: 'send' });
  await new Promise((r) => setTimeout(r, 3000));
  const scrapeMs: number[] = [];
  // BENCH_CONF_SCRAPE=0 reads no /metrics (a scrape's own cost shows as the difference).
  const scrape = process.env.BENCH_CONF_SCRAPE !== '0';
  const feedMetrics = async (): Promise<number[]> => {
    if (!scrape) return [0, 0, 0];
    const t0 = performance.now();
    const text = await (await fetch(svc.url('/metrics'))).text();
    scrapeMs.push(performance.now() - t0);
    return ['underruns', 'frames_trimmed', 'frames_dropped'].map((k) => metricValue(text, `sentiric_media_conference_${k}_total`) ?? 0);
  };
  const feeds0 = await feedMetrics();
  // With shards: the supervisor and every shard process (mediasoup workers idle here).
  const tree = (): number[] => (shards > 1 ? execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number) : []);
  const kids = tree();
  const cpu0 = treeCpuSeconds(pid, kids);
  const g0 = (await ask<{ seconds: number }>(gen, { cmd: 'cpu' })).seconds;
  const t0 = performance.now();
  const out = await ask<{ received: number; expected: number; seqGaps: number; p50: number; p01: number; p99: number }>(gen, { cmd: 'measure', seconds });
  const wall = (performance.now() - t0) / 1000;
  const cpu = (treeCpuSeconds(pid, kids) - cpu0) / wall;
  const gcpu = ((await ask<{ seconds: number }>(gen, { cmd: 'cpu' })).seconds - g0) / wall;
  const feeds = (await feedMetrics()).map((v, k) => v - feeds0[k]!);
  const lat: number[] = [];
  // On kernel timestamps too: the talker's first loud packet into the service, to the
  // listener's first packet out of it (the network and both processes' loops left out).
  const capture = await captureUdp(probePorts.flatMap((p) => [p.talker, p.listener]));
  for (let k = 0; k < 5; k++) {
    const { ms } = await ask<{ ms: number[] }>(gen, { cmd: 'probe' });
    for (const x of ms) if (Number.isFinite(x)) lat.push(x);
    // Talking holds 500 ms after the last loud frame: wait until the listener is quiet again.
    await new Promise((r) => setTimeout(r, 900));
  }
  const captured = await capture.stop();
  const kernel = probePorts.flatMap((p) => kernelLatencies(captured, p.talker, p.listener)).sort((a, b) => a - b);
  // The load generator's own send jitter, as the service's socket saw it: its probe talkers' packets.
  const sendJitter = probePorts
    .flatMap((p) => {
      const at = captured.filter((d) => d.dstPort === p.talker && d.payload.length > 12).map((d) => d.atMs);
      return at.slice(1).map((a, k) => Math.abs(a - at[k]! - 20));
    })
    .sort((a, b) => a - b);
  gen.send({ cmd: 'stop' });
  client.close();
  await svc.stop(process.env.BENCH_CPU_PROF ? 'SIGTERM' : 'SIGKILL');
  lat.sort((a, b) => a - b);
  const inSpec = out.received >= out.expected * 0.999 && out.p01 >= 15 && out.p99 <= 25;
  return {
    participants,
    rooms,
    ...(shards > 1 ? { shards, members_across_shards: svc.lines.filter((l) => l.event === 'BRIDGE_CREATED' && (l.attributes as Record<string, unknown>)['bridge.across_shards'] === true).length } : {}),
    talkers_per_room: Math.min(talkers, size),
    'cpu_%_total': +(cpu * 100).toFixed(1),
    'cpu_%_per_participant': +((cpu * 100) / (participants + 2 * PROBES)).toFixed(3),
    received_vs_expected: `${out.received}/${out.expected}`,
    seq_gaps: out.seqGaps,
    'out_interval_p1/p50/p99_ms': `${out.p01.toFixed(1)}/${out.p50.toFixed(1)}/${out.p99.toFixed(1)}`,
    in_spec: inSpec ? 'yes' : 'no',
    // Of every participant's input feed while measured: a talker's frame missing at its tick, delay given back, bursts cut.
    'feed_underruns/trimmed/dropped': feeds.map((v) => Math.round(v)).join('/'),
    'added_latency_seen_by_generator_p50/max_ms': lat.length ? `${median(lat).toFixed(1)}/${percentile(lat, 1).toFixed(1)} (${lat.length} probes)` : 'none heard',
    'added_latency_kernel_p50/p90/max_ms': kernel.length ? `${median(kernel).toFixed(1)}/${percentile(kernel, 0.9).toFixed(1)}/${kernel.at(-1)!.toFixed(1)} (${kernel.length})` : 'none',
    'load_generator_send_jitter_p50/p99_ms': `${median(sendJitter).toFixed(1)}/${percentile(sendJitter, 0.99).toFixed(1)}`,
    'metrics_scrape_ms': scrapeMs.map((x) => x.toFixed(1)).join('/'),
    'load_generator_cpu_%': +(gcpu * 100).toFixed(1),
  };
}

/**
 * A phone's voice to the browsers of a conference: forwarded as PCMU (a table lookup per
 * sample) against re-encoded to Opus at the service's settings (what a call's room does),
 * CPU per 20 ms frame in this process, median of five runs.
 */
function trackCost(): Record<string, string | number> {
  const pcm = Int16Array.from({ length: 160 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000)));
  const opus = new OpusFrameEncoder({ sampleRate: 8000, complexity: 0, bitrate: 24000 });
  const out = new Uint8Array(160);
  const per = (fn: () => void, n: number): number => {
    const runs: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = process.cpuUsage();
      for (let k = 0; k < n; k++) fn();
      const u = process.cpuUsage(t0);
      runs.push(((u.user + u.system) / n) * 1000);
    }
    return median(runs);
  };
  const g711Ns = per(() => encodeG711('PCMU', pcm, out), 200_000);
  const opusNs = per(() => opus.encode(pcm), 20_000);
  return { 'pcmu_forward_ns_per_frame': Math.round(g711Ns), 'opus_reencode_ns_per_frame': Math.round(opusNs), 'opus_over_pcmu': +(opusNs / g711Ns).toFixed(0), 'opus_core_%_per_phone_track': +((opusNs * 50) / 1e7).toFixed(3) };
}

/**
 * A member of another shard or instance: its 20 ms frames cross a frame link each way. CPU
 * per frame, send and receive together, in this process (median of five runs of 20,000
 * frames), for the loopback link between shards and the sealed link between machines.
 */
async function linkCost(): Promise<Record<string, string | number>> {
  const pcm = Int16Array.from({ length: 160 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000)));
  const per = async (mode: 'loopback' | 'network'): Promise<number> => {
    const token = randomBytes(16);
    const [a, b] = await Promise.all([0, 1].map((role) => FrameLink.open(token, mode === 'loopback' ? { kind: 'loopback' } : { kind: 'network', bind: '127.0.0.1', role: role as 0 | 1 })));
    let got = 0;
    a!.connect({ address: '127.0.0.1', port: b!.udpPort }, () => {});
    b!.connect({ address: '127.0.0.1', port: a!.udpPort }, () => got++);
    const runs: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = process.cpuUsage();
      const from = got;
      // In batches the socket buffer holds, each received before the next is sent.
      for (let k = 0; k < 20_000; k += 20) {
        for (let j = 0; j < 20; j++) a!.send(pcm, k + j, false);
        for (let wait = 0; got - from < k + 20 && wait < 20; wait++) await new Promise((res) => setTimeout(res, 0));
      }
      const u = process.cpuUsage(t0);
      runs.push(((u.user + u.system) / Math.max(1, got - from)) * 1000);
    }
    a!.close();
    b!.close();
    return median(runs);
  };
  const loopback = await per('loopback');
  const sealed = await per('network');
  return { 'loopback_link_ns_per_frame': Math.round(loopback), 'sealed_link_ns_per_frame': Math.round(sealed), 'loopback_core_%_per_remote_member_both_ends': +((loopback * 100) / 1e7).toFixed(3), 'sealed_core_%_per_remote_member_both_ends': +((sealed * 100) / 1e7).toFixed(3) };
}

console.log(`phone track into the router: ${JSON.stringify(trackCost())}`);
console.log(`a member of another shard or instance, its frame link (both directions: 100 frames/s): ${JSON.stringify(await linkCost())}`);
console.log(`conference benchmark: rooms of ${size}, ${talkers} talking, ${seconds} s per level`);
for (const n of levels) console.log(JSON.stringify(await level(n)));
