// Call recording cost on one Node process: N concurrent calls (inbound PCMU at 50 pps from
// the load generator, a looping prompt outbound) measured in three phases on the same
// service, alternated over several rounds: no recording, every call recording WAV (8 kHz
// stereo) to file://, every call recording MP3. Also the finalize of all recordings at once
// (MP3: ffmpeg children, whose CPU shows in the service's cutime/cstime once reaped) and the
// disk write rate. Prints one JSON line per phase (medians over rounds) and a summary.
import { fork } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startService } from '../test/helpers/service.ts';
import { TestClient, metricValue } from '../test/helpers/grpc-client.ts';
import { speechFixtures } from '../test/helpers/audio.ts';
import { cpuSeconds, median, rssBytes } from './lib/proc.ts';
import { ask, benchEnv } from './lib/harness.ts';

const N = Number(process.env.BENCH_RECORDINGS ?? 200);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const warmup = Number(process.env.BENCH_WARMUP ?? 3);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const GOAL_PCT_PER_CALL = 0.2;
const ANCHOR_PCT_PER_CALL = 0.13;
const TICKS_PER_SECOND = 100;

type Row = Record<string, number | string>;
interface GenOut { received: number; expected: number; seqGaps: number; p50: number; p01: number; p99: number }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU seconds of reaped children (cutime + cstime, fields 16 and 17). */
function childCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / TICKS_PER_SECOND;
}

/** Live children (the mediasoup worker): pids from /proc/<pid>/task/<tid>/children. */
function liveChildren(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (c) out.push(Number(c));
    } catch {
      // thread gone
    }
  }
  return out;
}

function liveChildrenCpu(pid: number): number {
  return liveChildren(pid).reduce((s, c) => {
    try {
      return s + cpuSeconds(c);
    } catch {
      return s;
    }
  }, 0);
}

function procIo(pid: number): { wchar: number; write_bytes: number } | null {
  try {
    const t = readFileSync(`/proc/${pid}/io`, 'utf8');
    const v = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? NaN);
    return { wchar: v('wchar'), write_bytes: v('write_bytes') };
  } catch {
    return null;
  }
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    try {
      total += statSync(join(dir, name)).size;
    } catch {
      // removed meanwhile
    }
  }
  return total;
}

const spool = mkdtempSync(join(tmpdir(), 'bench-spool-'));
const fileRoot = mkdtempSync(join(tmpdir(), 'bench-recs-'));
const fx = speechFixtures();
const promptSeconds = (statSync(fx.wav16k).size - 44) / 32000;
const svc = await startService({
  env: benchEnv({
    RECORDING_SPOOL_DIR: spool,
    RECORDING_FILE_ROOT: fileRoot,
    RECORDING_MAX_BACKOFF_SECONDS: '1',
  }),
});
const client = new TestClient(svc.grpcPort);
const gen = fork(fileURLToPath(new URL('./lib/load-generator.ts', import.meta.url)), { stdio: 'inherit' });
const pid = svc.proc.pid!;
const benchStart = performance.now();
console.log(`recording benchmark: ${N} calls, ${rounds} rounds of none/wav/mp3, ${warmup} s warm-up + ${seconds} s window, prompt ${fx.wav16k} (${promptSeconds.toFixed(2)} s), spool ${spool}`);

const metrics = async (): Promise<string> => (await fetch(svc.url('/metrics'))).text();
const errors: string[] = [];
const check = (what: string, r: { error?: { details: string } }): void => {
  if (r.error) errors.push(`${what}: ${r.error.details}`);
};

try {
  await sleep(500);
  const rss0 = rssBytes(pid);
  const ports: number[] = [];
  for (let i = 0; i < N; i++) {
    const a = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: `bench-rec-${i}` });
    if (a.error) throw new Error(`AllocatePort ${i}: ${a.error.details}`);
    const rtp = a.response!.rtp_port;
    const { port } = await ask<{ port: number }>(gen, { cmd: 'add', target: rtp });
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: rtp, rtp_target_addr: `127.0.0.1:${port}` });
    ports.push(rtp);
  }
  // The prompt loops: queued ahead of the clock, topped up outside the measurement windows.
  let queued = 0;
  const playStart = performance.now();
  const topUp = async (aheadSeconds: number): Promise<void> => {
    const elapsed = (performance.now() - playStart) / 1000;
    const want = Math.ceil((elapsed + aheadSeconds) / promptSeconds);
    for (; queued < want; queued++) {
      const rs = await Promise.all(ports.map((p) => client.media_('PlayAudio', { audio_uri: `file://${fx.wav16k}`, server_rtp_port: p })));
      rs.forEach((r, i) => check(`PlayAudio ${i}`, r));
    }
  };
  await topUp(90);
  await ask(gen, { cmd: 'send' });

  const phase = async (name: string): Promise<Row> => {
    await sleep(warmup * 1000);
    const m0 = await metrics();
    const cpu0 = cpuSeconds(pid);
    const live0 = liveChildrenCpu(pid);
    const io0 = procIo(pid);
    const disk0 = dirBytes(spool);
    const t0 = performance.now();
    const out = await ask<GenOut>(gen, { cmd: 'measure', seconds });
    const wall = (performance.now() - t0) / 1000;
    const cpu = (cpuSeconds(pid) - cpu0) / wall;
    const live = (liveChildrenCpu(pid) - live0) / wall;
    const io1 = procIo(pid);
    const disk1 = dirBytes(spool);
    const m1 = await metrics();
    const d = (metric: string): number => (metricValue(m1, metric) ?? 0) - (metricValue(m0, metric) ?? 0);
    return {
      phase: name,
      'cpu_%_total': cpu * 100,
      'cpu_%_per_call': (cpu * 100) / N,
      'mediasoup_worker_cpu_%': live * 100,
      spool_write_kB_per_s: (disk1 - disk0) / wall / 1024,
      proc_wchar_kB_per_s: io0 && io1 ? (io1.wchar - io0.wchar) / wall / 1024 : NaN,
      proc_write_bytes_kB_per_s: io0 && io1 ? (io1.write_bytes - io0.write_bytes) / wall / 1024 : NaN,
      in_received_pct: (100 * d('sentiric_media_rtp_packets_received_total')) / (N * 50 * wall),
      svc_out_sent_pct: (100 * d('sentiric_media_rtp_packets_sent_total')) / (N * 50 * wall),
      out_received_pct: (100 * out.received) / out.expected,
      out_seq_gaps: out.seqGaps,
      out_interval_p99_ms: out.p99,
    };
  };

  const startAll = async (format: 'wav' | 'mp3', round: number): Promise<number> => {
    const t = performance.now();
    const rs = await Promise.all(
      ports.map((p, i) => client.media_('StartRecording', { server_rtp_port: p, output_uri: 'file:///bench/', format, sample_rate: 8000, channel_layout: 'stereo', call_id: `bench-${format}-r${round}-${i}` })),
    );
    rs.forEach((r, i) => check(`StartRecording ${format} ${i}`, r));
    return t;
  };

  /** StopRecording on every call at once, then waits for the uploads (file:// copies) to finish. */
  const finalizeAll = async (format: 'wav' | 'mp3', startedAt: number, baselineCpuPct: number): Promise<Row> => {
    const recordedSeconds = (performance.now() - startedAt) / 1000;
    const m0 = await metrics();
    const cpu0 = cpuSeconds(pid);
    const child0 = childCpuSeconds(pid);
    const t0 = performance.now();
    const stopMs: number[] = [];
    // What the phones get back while every recording is finalized at once.
    const media = ask<GenOut>(gen, { cmd: 'measure', seconds: 5 });
    const rs = await Promise.all(
      ports.map(async (p) => {
        const t = performance.now();
        const r = await client.call(client.media, 'StopRecording', { server_rtp_port: p }, {}, 180_000);
        stopMs.push(performance.now() - t);
        return r;
      }),
    );
    rs.forEach((r, i) => check(`StopRecording ${format} ${i}`, r));
    const stopped = (performance.now() - t0) / 1000;
    for (;;) {
      const m = await metrics();
      if ((metricValue(m, 'sentiric_media_recording_uploads_pending') ?? 0) === 0 && (metricValue(m, 'sentiric_media_recordings_active') ?? 0) === 0) break;
      if (performance.now() - t0 > 120_000) {
        errors.push(`${format} finalize: uploads still pending after 120 s`);
        break;
      }
      await sleep(100);
    }
    const wall = (performance.now() - t0) / 1000;
    const svcCpu = cpuSeconds(pid) - cpu0;
    const childCpu = childCpuSeconds(pid) - child0;
    const m1 = await metrics();
    const d = (metric: string): number => (metricValue(m1, metric) ?? 0) - (metricValue(m0, metric) ?? 0);
    const out = await media;
    const extraSvc = svcCpu - (baselineCpuPct / 100) * wall;
    stopMs.sort((a, b) => a - b);
    let stored = 0;
    try {
      stored = readdirSync(join(fileRoot, 'bench'), { recursive: true }).filter((f) => String(f).endsWith(`.${format}`)).length;
    } catch {
      errors.push(`${format} finalize: nothing stored under ${fileRoot}/bench`);
    }
    // Leave the disk as it was: the next phases measure their own writes.
    rmSync(join(fileRoot, 'bench'), { recursive: true, force: true });
    return {
      phase: `${format}_finalize`,
      recorded_s: recordedSeconds,
      stop_all_s: stopped,
      wall_until_stored_s: wall,
      stop_p50_ms: stopMs[Math.floor(stopMs.length / 2)] ?? NaN,
      stop_max_ms: stopMs[stopMs.length - 1] ?? NaN,
      'service_cpu_%_during': (100 * svcCpu) / wall,
      service_cpu_above_baseline_s: extraSvc,
      child_cpu_s: childCpu,
      child_cpu_s_per_recording: childCpu / N,
      // A negative service excess (starved by the children) counts as zero.
      cpu_s_per_recording: (Math.max(0, extraSvc) + childCpu) / N,
      svc_in_received_pct: (100 * d('sentiric_media_rtp_packets_received_total')) / (N * 50 * wall),
      svc_out_sent_pct: (100 * d('sentiric_media_rtp_packets_sent_total')) / (N * 50 * wall),
      stored_files: stored,
      recorded_MB: d('sentiric_media_recording_bytes_written_total') / 1e6,
      recording_dropped_bytes: d('sentiric_media_recording_dropped_bytes_total'),
      upload_failures: (metricValue(m1, 'sentiric_media_recording_uploads_total', { result: 'failed' }) ?? 0) - (metricValue(m0, 'sentiric_media_recording_uploads_total', { result: 'failed' }) ?? 0),
      phones_first5s_out_received_pct: (100 * out.received) / out.expected,
      phones_first5s_out_seq_gaps: out.seqGaps,
      phones_first5s_out_interval_p99_ms: out.p99,
    };
  };

  const rows: Record<string, Row[]> = { none: [], wav: [], wav_finalize: [], mp3: [], mp3_finalize: [] };
  for (let r = 0; r < rounds; r++) {
    await topUp(90);
    const none = await phase('none');
    rows.none!.push(none);
    const wavAt = await startAll('wav', r);
    rows.wav!.push(await phase('wav'));
    rows.wav_finalize!.push(await finalizeAll('wav', wavAt, none['cpu_%_total'] as number));
    await topUp(60);
    const mp3At = await startAll('mp3', r);
    rows.mp3!.push(await phase('mp3'));
    rows.mp3_finalize!.push(await finalizeAll('mp3', mp3At, none['cpu_%_total'] as number));
    console.error(`round ${r + 1}/${rounds} done at ${((performance.now() - benchStart) / 1000).toFixed(0)} s: none ${(none['cpu_%_total'] as number).toFixed(1)}%, wav ${(rows.wav!.at(-1)!['cpu_%_total'] as number).toFixed(1)}%, mp3 ${(rows.mp3!.at(-1)!['cpu_%_total'] as number).toFixed(1)}%`);
  }

  const round3 = (v: number): number => (Number.isFinite(v) ? +v.toFixed(3) : v);
  const medianRow = (list: Row[]): Row => {
    const out: Row = { phase: list[0]!.phase!, rounds: list.length };
    for (const k of Object.keys(list[0]!)) if (k !== 'phase') out[k] = round3(median(list.map((x) => x[k] as number)));
    return out;
  };
  const med: Record<string, Row> = {};
  for (const [k, list] of Object.entries(rows)) {
    med[k] = medianRow(list);
    console.log(JSON.stringify(med[k]));
  }
  const cpuOf = (k: string): number[] => rows[k]!.map((x) => x['cpu_%_total'] as number);
  const added = (k: string): number => (median(cpuOf(k)) - median(cpuOf('none'))) / N;
  const paired = (k: string): number => median(cpuOf(k).map((c, i) => (c - cpuOf('none')[i]!) / N));
  const wavAdded = added('wav');
  const mp3Added = added('mp3');
  // MP3's encode happens at finalize: spread over the recording's length it is a per-call rate too.
  const mp3Fin = med.mp3_finalize!;
  const mp3Amortized = mp3Added + (100 * (mp3Fin.cpu_s_per_recording as number)) / (mp3Fin.recorded_s as number);
  const wavFin = med.wav_finalize!;
  const wavAmortized = wavAdded + (100 * (wavFin.cpu_s_per_recording as number)) / (wavFin.recorded_s as number);
  console.log(
    JSON.stringify({
      summary: 'recording',
      calls: N,
      'wav_added_cpu_%_per_call': round3(wavAdded),
      'wav_added_cpu_%_per_call_paired_median': round3(paired('wav')),
      'wav_added_incl_finalize_%_per_call': round3(wavAmortized),
      'mp3_added_cpu_%_per_call': round3(mp3Added),
      'mp3_added_cpu_%_per_call_paired_median': round3(paired('mp3')),
      'mp3_added_incl_transcode_%_per_call': round3(mp3Amortized),
      wav_vs_goal: round3(wavAdded / GOAL_PCT_PER_CALL),
      mp3_vs_goal: round3(mp3Added / GOAL_PCT_PER_CALL),
      mp3_incl_transcode_vs_goal: round3(mp3Amortized / GOAL_PCT_PER_CALL),
      wav_vs_rust_anchor: round3(wavAdded / ANCHOR_PCT_PER_CALL),
      mp3_transcode_cpu_s_per_recording: mp3Fin.cpu_s_per_recording,
      mp3_finalize_all_wall_s: mp3Fin.wall_until_stored_s,
      spool_write_kB_per_s_wav: med.wav!.spool_write_kB_per_s,
      rss_per_session_kb: Math.round((rssBytes(pid) - rss0) / N / 1024),
      request_errors: errors.length,
      service_error_lines: svc.lines.filter((l) => l.level === 'error').length,
      service_warn_lines: svc.lines.filter((l) => l.level === 'warn').length,
      runtime_s: Math.round((performance.now() - benchStart) / 1000),
    }),
  );
  for (const e of errors.slice(0, 10)) console.error(`request error: ${e}`);
  const byEvent = new Map<string, number>();
  for (const l of svc.lines) {
    if (l.level !== 'error' && l.level !== 'warn') continue;
    const key = `${l.level} ${l.event ?? l.message}`;
    byEvent.set(key, (byEvent.get(key) ?? 0) + 1);
  }
  for (const [k, v] of byEvent) console.error(`service log: ${v} x ${k}`);
  if (svc.stderr.length) console.error(`service stderr (last 5): ${svc.stderr.slice(-5).join(' | ')}`);
} finally {
  if (gen.connected) gen.send({ cmd: 'stop' });
  client.close();
  await svc.stop('SIGKILL');
  rmSync(spool, { recursive: true, force: true });
  rmSync(fileRoot, { recursive: true, force: true });
}
