// Conferences on one process: rooms of BENCH_CONF_SIZE G.711 phones (default 10) with
// BENCH_CONF_TALKERS talking at a time (default 2), at each participant count in
// BENCH_CONF_PARTICIPANTS. Prints per level: CPU per participant, loss and the cadence of
// what every participant receives, and the mix path's added latency (a probe pair in its
// own conference: silence, then speech; the time from the talker's first loud packet to the
// listener's first packet). In spec: nothing lost, outbound interval p1 >= 15 and p99 <= 25 ms.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startService } from '../test/helpers/service.ts';
import { TestClient } from '../test/helpers/grpc-client.ts';
import { cpuSeconds, median, percentile } from './lib/proc.ts';
import { ask, benchEnv } from './lib/harness.ts';

const levels = (process.env.BENCH_CONF_PARTICIPANTS ?? '100,200,300,400,500,600').split(',').map(Number);
const size = Number(process.env.BENCH_CONF_SIZE ?? 10);
const talkers = Number(process.env.BENCH_CONF_TALKERS ?? 2);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);

async function level(participants: number): Promise<Record<string, string | number>> {
  const svc = await startService({ env: benchEnv(process.env.BENCH_CPU_PROF ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${process.env.BENCH_CPU_PROF}` } : {}) });
  const client = new TestClient(svc.grpcPort);
  const gen = fork(fileURLToPath(new URL('./lib/conference-load.ts', import.meta.url)), { stdio: 'inherit' });
  const pid = svc.proc.pid!;
  const rpc = async (method: string, req: object): Promise<{ rtp_port: number }> => {
    const r = await client.media_<{ rtp_port: number }>(method, req);
    if (r.error) throw new Error(`${method}: ${r.error.details}`);
    return r.response!;
  };
  const join = async (conf: string, id: string, role: { talker?: boolean; probe?: 'talker' | 'listener' }): Promise<void> => {
    const { rtp_port } = await rpc('AllocatePort', { call_id: id, codec: 'PCMU' });
    const { port } = await ask<{ port: number }>(gen, { cmd: 'add', target: rtp_port, ...role });
    await rpc('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: rtp_port, rtp_target_addr: `127.0.0.1:${port}` });
    await rpc('AddToConference', { conference_id: conf, server_rtp_port: rtp_port });
  };
  const rooms = Math.ceil(participants / size);
  for (let r = 0; r < rooms; r++) {
    const conf = `bench-${r}`;
    await rpc('CreateConference', { conference_id: conf });
    for (let k = 0; k < size && r * size + k < participants; k++) await join(conf, `bench-${r}-${k}`, { talker: k < talkers });
  }
  await rpc('CreateConference', { conference_id: 'probe' });
  await join('probe', 'probe-talker', { probe: 'talker' });
  await join('probe', 'probe-listener', { probe: 'listener' });
  await ask(gen, { cmd: 'send' });
  await new Promise((r) => setTimeout(r, 3000));
  const cpu0 = cpuSeconds(pid);
  const g0 = (await ask<{ seconds: number }>(gen, { cmd: 'cpu' })).seconds;
  const t0 = performance.now();
  const out = await ask<{ received: number; expected: number; seqGaps: number; p50: number; p01: number; p99: number }>(gen, { cmd: 'measure', seconds });
  const wall = (performance.now() - t0) / 1000;
  const cpu = (cpuSeconds(pid) - cpu0) / wall;
  const gcpu = ((await ask<{ seconds: number }>(gen, { cmd: 'cpu' })).seconds - g0) / wall;
  const lat: number[] = [];
  for (let k = 0; k < 8; k++) {
    const { ms } = await ask<{ ms: number }>(gen, { cmd: 'probe' });
    if (Number.isFinite(ms)) lat.push(ms);
    // Talking holds 500 ms after the last loud frame: wait until the listener is quiet again.
    await new Promise((r) => setTimeout(r, 900));
  }
  gen.send({ cmd: 'stop' });
  client.close();
  await svc.stop(process.env.BENCH_CPU_PROF ? 'SIGTERM' : 'SIGKILL');
  lat.sort((a, b) => a - b);
  const inSpec = out.received >= out.expected * 0.999 && out.p01 >= 15 && out.p99 <= 25;
  return {
    participants,
    rooms,
    talkers_per_room: Math.min(talkers, size),
    'cpu_%_total': +(cpu * 100).toFixed(1),
    'cpu_%_per_participant': +((cpu * 100) / (participants + 2)).toFixed(3),
    received_vs_expected: `${out.received}/${out.expected}`,
    seq_gaps: out.seqGaps,
    'out_interval_p1/p50/p99_ms': `${out.p01.toFixed(1)}/${out.p50.toFixed(1)}/${out.p99.toFixed(1)}`,
    in_spec: inSpec ? 'yes' : 'no',
    'added_latency_median/max_ms': lat.length ? `${median(lat).toFixed(1)}/${percentile(lat, 1).toFixed(1)} (${lat.length} probes)` : 'none heard',
    'load_generator_cpu_%': +(gcpu * 100).toFixed(1),
  };
}

console.log(`conference benchmark: rooms of ${size}, ${talkers} talking, ${seconds} s per level`);
for (const n of levels) console.log(JSON.stringify(await level(n)));
