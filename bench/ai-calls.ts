// What an AI call costs on one shard, against its parts, in one run: an echo call (RTP in and
// out); an AI call over the contract RPCs (RecordAudio 16 kHz fork, StreamAudioToCall 16 kHz
// TTS); the same over StreamAudio + InjectAudio; the contract AI call recording a stereo WAV
// on top; the same AI call over a WebSocket media stream (raw frames, and Twilio's messages),
// the service dialling a backend in this process; and a bare grpc-js stream of the same
// message rate (the floor). At 50, 100 and 200
// calls each: the service's CPU per call, loss, outbound cadence, fork latency inside the
// service (its histogram) and seen from the client (StreamAudio frames carry the caller's RTP
// timestamp, matched to when the load generator sent that packet), the service's garbage
// collection, event-loop delay, late media clock slots and RSS in the window, and the load
// generator's and the client's own CPU.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { startService } from '../test/helpers/service.ts';
import { TestClient } from '../test/helpers/grpc-client.ts';
import { cpuPressureUs, cpuSeconds, median, niceOf, percentile, rssBytes, runqueueWaitNs, sharedClockMs, wakeups } from './lib/proc.ts';
import { ask, BENCH_RTP, benchEnv, every } from './lib/harness.ts';
import { WireCapture } from './lib/wire-cadence.ts';
import { floorService } from './lib/grpc-floor.ts';
import { histogramQuantile, scrapeBuckets, scrapeValue } from './lib/histogram.ts';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

type Kind = 'echo' | 'ai' | 'ai-3-forks' | 'ai-stream-inject' | 'ai-recording' | 'ws-raw' | 'ws-twilio' | 'grpc-floor';
type Stream = grpc.ClientReadableStream<Record<string, unknown>>;
type Duplex = grpc.ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;
interface GenOut { received: number; expected: number; seqGaps: number; p01: number; p50: number; p99: number }

const levels = (process.env.BENCH_AI_CALLS ?? '50,100,200').split(',').map(Number);
const kinds = (process.env.BENCH_AI_KINDS ?? 'grpc-floor,echo,ai,ai-stream-inject,ai-recording,ws-raw,ws-twilio').split(',') as Kind[];
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
// The client's HTTP/2 receive window for its connection (BENCH_CLIENT_WINDOW bytes). grpc-js
// keeps the connection's at 64 KiB unless told: 20 ms of 100 calls' 16 kHz forks, so the
// service stops sending every call's frames whenever either loop is busy that long. Client
// fork p99, 3 alternating pairs each, 64 KiB against 1 MiB: medians 18.6 against 12.3 ms at
// 100 calls, 122 against 34 ms at 150. A platform client reading many forks on one
// connection raises it as this one does; 65535 measures grpc-js's default.
const CLIENT_WINDOW = Number(process.env.BENCH_CLIENT_WINDOW ?? 1 << 20);
const clientOptions: grpc.ChannelOptions = { 'grpc-node.flow_control_window': CLIENT_WINDOW };
const tts = Buffer.from(Int16Array.from({ length: 1600 }, (_, i) => Math.round(3000 * Math.sin(i / 7))).buffer);
const pct = (cpuS: number, wall: number): number => +((cpuS / wall) * 100).toFixed(1);

function selfCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** The service's garbage collection and event-loop delay between two scrapes, and its media clock's late slots. */
function serviceRuntime(before: string, after: string, wall: number): Record<string, unknown> {
  const d = (name: string, labels = ''): number => scrapeValue(after, name, labels) - scrapeValue(before, name, labels);
  const gc = 'sentiric_media_nodejs_gc_duration_seconds';
  const ms = (s: number): string => (s * 1000).toFixed(1);
  return {
    'gc_minor/major_per_s': `${(d(`${gc}_count`, 'kind="minor"') / wall).toFixed(1)}/${(d(`${gc}_count`, 'kind="major"') / wall).toFixed(2)}`,
    'gc_ms_per_s': +((d(`${gc}_sum`) * 1000) / wall).toFixed(2),
    'event_loop_delay_p99/max_ms': `${ms(scrapeValue(after, 'sentiric_media_nodejs_eventloop_lag_p99_seconds'))}/${ms(scrapeValue(after, 'sentiric_media_nodejs_eventloop_lag_max_seconds'))}`,
    clock_late_ticks: d('sentiric_media_clock_late_ticks_total'),
  };
}

async function floor(n: number): Promise<Record<string, unknown>> {
  const server = fork(fileURLToPath(new URL('./lib/grpc-floor.ts', import.meta.url)), { stdio: 'inherit' });
  const [msg] = (await once(server, 'message')) as [{ port: number }];
  const port = msg.port;
  const Client = grpc.makeGenericClientConstructor(floorService, 'Floor');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), clientOptions);
  let frames = 0;
  let measuring = false;
  const latency: number[] = [];
  const calls = Array.from({ length: n }, () => {
    const s = (client as unknown as { frames(req: Buffer): Stream }).frames(Buffer.alloc(0));
    s.on('data', (m: Buffer) => {
      frames++;
      if (measuring) latency.push(sharedClockMs() - m.readDoubleLE(0));
    });
    s.on('error', () => {});
    return s;
  });
  await sleep(2000);
  const c0 = cpuSeconds(server.pid!);
  const s0 = selfCpu();
  const f0 = frames;
  const t0 = performance.now();
  measuring = true;
  await sleep(seconds * 1000);
  measuring = false;
  const wall = (performance.now() - t0) / 1000;
  latency.sort((a, b) => a - b);
  const cpu = cpuSeconds(server.pid!) - c0;
  const self = selfCpu() - s0;
  for (const c of calls) c.cancel();
  client.close();
  server.kill('SIGKILL');
  return {
    kind: 'grpc-floor',
    calls: n,
    'service_cpu_%': pct(cpu, wall),
    'cpu_%_per_call': +((pct(cpu, wall) / n)).toFixed(3),
    'client_cpu_%': pct(self, wall),
    frames_per_s: Math.round((frames - f0) / wall),
    // Written by a bare server to read by this client: what the machine alone adds to a fork's latency.
    'fork_latency_client_p50/p99_ms': `${percentile(latency, 0.5).toFixed(2)}/${percentile(latency, 0.99).toFixed(2)}`,
  };
}

const INJECTION_PROBES = Number(process.env.BENCH_INJECTION_PROBES ?? 100);

/**
 * Injection latency at load, from a process of its own (see lib/injection-probe.ts): sorted,
 * in ms, or why it was not measured.
 */
async function injectionAtLoad(grpcPort: number, streamApi: boolean): Promise<number[] | string> {
  const probe = fork(fileURLToPath(new URL('./lib/injection-probe.ts', import.meta.url)), { stdio: 'inherit' });
  probe.send({ grpcPort, probes: INJECTION_PROBES, streamApi });
  const [answer] = (await once(probe, 'message')) as [{ latencies?: number[]; error?: string }];
  return answer.latencies ?? `not measured: ${answer.error}`;
}

async function calls(kind: Exclude<Kind, 'grpc-floor'>, n: number, nodeArgs: string[] = [], priority = ''): Promise<Record<string, unknown>> {
  const fileRoot = mkdtempSync(join(tmpdir(), 'bench-ai-rec-'));
  const svc = await startService({
    nodeArgs,
    env: benchEnv({
      ADMISSION_MAX_CPU: '0',
      ADMISSION_MAX_LOOP_LAG_MS: '0',
      RECORDING_SPOOL_DIR: join(fileRoot, 'spool'),
      RECORDING_FILE_ROOT: fileRoot,
      MEDIA_STREAM_ALLOWED_CIDRS: '127.0.0.1/32',
      ...(priority ? { MEDIA_PRIORITY: priority } : {}),
      // BENCH_CPU_PROF=dir writes a V8 CPU profile of the service (stopped with SIGTERM);
      // BENCH_NODE_OPTIONS gives the service's Node flags of its own (a heap setting, say).
      ...(process.env.BENCH_CPU_PROF || process.env.BENCH_NODE_OPTIONS
        ? { NODE_OPTIONS: [process.env.BENCH_NODE_OPTIONS ?? '', process.env.BENCH_CPU_PROF ? `--cpu-prof --cpu-prof-dir=${process.env.BENCH_CPU_PROF}` : ''].join(' ').trim() }
        : {}),
    }),
  });
  const client = new TestClient(svc.grpcPort, undefined, clientOptions);
  const media = client.media as unknown as Record<string, (r?: unknown) => Stream & Duplex>;
  const gen = fork(fileURLToPath(new URL('./lib/load-generator.ts', import.meta.url)), { stdio: 'inherit' });
  const injections: Duplex[] = [];
  const streams: Stream[] = [];
  // WebSocket kinds: the backend, in this process; each call's connection speaks through `speakers`.
  const speakers: (() => void)[] = [];
  const backend = kind.startsWith('ws-') ? new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false }) : null;
  const connected: WebSocket[] = [];
  if (backend) {
    await once(backend, 'listening');
    backend.on('connection', (ws) => {
      connected.push(ws);
      ws.on('message', () => frames++);
      ws.on('error', () => {});
    });
  }
  const twilioTts = JSON.stringify({ event: 'media', streamSid: 'bench', media: { payload: tts.toString('base64') } });
  let frames = 0;
  // Client-side fork latency: when each frame arrived, by the caller RTP timestamp it starts at.
  const arrivals: { phone: number; ts: number; at: number }[] = [];
  let recording = 0;
  for (let i = 0; i < n; i++) {
    const callId = `ai-${i}`;
    const a = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId });
    if (!a.response) throw new Error(`AllocatePort: ${a.error?.details}`);
    const port = a.response.rtp_port;
    const { port: phone } = await ask<{ port: number }>(gen, { cmd: 'add', target: port });
    const target = `127.0.0.1:${phone}`;
    if (kind === 'echo') {
      await client.media_('PlayAudio', { audio_uri: 'control://enable_echo', server_rtp_port: port, rtp_target_addr: target });
      continue;
    }
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: target });
    if (backend) {
      const protocol = kind === 'ws-raw' ? 'MEDIA_STREAM_PROTOCOL_RAW' : 'MEDIA_STREAM_PROTOCOL_TWILIO';
      const url = `ws://127.0.0.1:${(backend.address() as AddressInfo).port}/b`;
      // BENCH_WS_FRAME_MS: longer raw frames, fewer messages (and socket writes) per call.
      const frameMs = kind === 'ws-raw' ? Number(process.env.BENCH_WS_FRAME_MS ?? 20) : 20;
      const r = await client.media_('StartMediaStream', { server_rtp_port: port, url, format: { protocol, encoding: 'AUDIO_ENCODING_PCM_S16LE', sample_rate: 16000, frame_ms: frameMs, bidirectional: true } });
      if (r.error) throw new Error(`StartMediaStream: ${r.error.details}`);
      const ws = connected.at(-1)!;
      speakers.push(kind === 'ws-raw' ? () => ws.send(tts) : () => ws.send(twilioTts));
      continue;
    }
    let inj: Duplex;
    if (kind === 'ai-stream-inject') {
      const s = media.StreamAudio!({ server_rtp_port: port, sample_rate: 16000, frame_ms: 20 });
      s.on('data', (m: { frame?: { rtp_timestamp: number } }) => {
        if (!m.frame) return;
        frames++;
        arrivals.push({ phone: i, ts: m.frame.rtp_timestamp, at: sharedClockMs() });
      });
      streams.push(s);
      inj = media.InjectAudio!();
      inj.write({ start: { server_rtp_port: port, sample_rate: 16000 } });
    } else {
      // ai-3-forks: three listeners of the caller at 16 kHz (STT, analytics, a supervisor's ear).
      for (let k = kind === 'ai-3-forks' ? 3 : 1; k > 0; k--) {
        const s = media.RecordAudio!({ server_rtp_port: port, target_sample_rate: 16000 });
        s.on('data', () => frames++);
        s.on('error', () => {});
        streams.push(s);
      }
      inj = media.StreamAudioToCall!();
      inj.write({ call_id: callId, audio_chunk: Buffer.alloc(0) });
      if (kind === 'ai-recording') {
        const r = await client.media_('StartRecording', { server_rtp_port: port, output_uri: 'file:///bench/', format: 'wav', sample_rate: 8000, channel_layout: 'stereo', call_id: callId });
        if (r.error) throw new Error(`StartRecording: ${r.error.details}`);
        recording++;
      }
    }
    for (const s of [streams.at(-1)!, inj]) s.on('error', () => {});
    inj.on('data', () => {});
    injections.push(inj);
    speakers.push(kind === 'ai-stream-inject' ? () => inj.write({ audio: tts }) : () => inj.write({ audio_chunk: tts }));
  }
  // TTS as an engine streams it: 300 ms ahead of real time, then 100 ms every 100 ms.
  for (const speak of speakers) for (let k = 0; k < 3; k++) speak();
  // Each call's engine speaks at a phase of its own: speaker j in tenth j % 10 of the 100 ms.
  let tenth = 0;
  const feeder = every(10, () => {
    for (let j = tenth; j < speakers.length; j += 10) speakers[j]!();
    tenth = (tenth + 1) % 10;
  });
  await ask(gen, { cmd: 'send' });
  // The first scrape takes 46-113 ms, later ones 6-27 ms (timed here, at 100 calls; warming
  // the service's metrics at its start did not shorten it). Done now, no loop stalls for it
  // inside the window.
  await (await fetch(svc.url('/metrics'))).text();
  await sleep(3000);
  // The RTP the service sends, timestamped by the kernel: cadence without the phones' loop in it.
  const wire = await WireCapture.start(...BENCH_RTP);
  // This scrape also starts the service's event-loop delay window (prom-client resets it on each).
  const x0 = await (await fetch(svc.url('/metrics'))).text();
  const m0 = scrapeBuckets(x0, 'sentiric_media_fork_latency_seconds');
  const pid = svc.proc.pid!;
  const cpu0 = cpuSeconds(pid);
  const gen0 = cpuSeconds(gen.pid!);
  const wait0 = runqueueWaitNs(pid);
  const woke0 = wakeups(pid);
  const pressure0 = cpuPressureUs();
  // The client's own loop delay: a frame that waits here is late as the client sees it.
  const clientLoop = monitorEventLoopDelay({ resolution: 1 });
  clientLoop.enable();
  const self0 = selfCpu();
  const f0 = frames;
  const a0 = arrivals.length;
  const t0 = performance.now();
  const out = await ask<GenOut>(gen, { cmd: 'measure', seconds });
  const wall = (performance.now() - t0) / 1000;
  const onWire = await wire.stop();
  const f1 = frames;
  const a1 = arrivals.length;
  const cpu = cpuSeconds(pid) - cpu0;
  const genCpu = cpuSeconds(gen.pid!) - gen0;
  const waited = (runqueueWaitNs(pid) - wait0) / 1e6;
  const woke = wakeups(pid) - woke0;
  const pressure = (cpuPressureUs() - pressure0) / 1e3;
  clientLoop.disable();
  const self = selfCpu() - self0;
  const x1 = await (await fetch(svc.url('/metrics'))).text();
  const m1 = scrapeBuckets(x1, 'sentiric_media_fork_latency_seconds');
  const rss = rssBytes(pid);
  const nice = niceOf(pid);
  // While the load runs on: how soon speech sent to one more call of this kind is heard.
  const injection = kind === 'ai' || kind === 'ai-stream-inject' || kind === 'ai-recording' ? await injectionAtLoad(svc.grpcPort, kind === 'ai-stream-inject') : undefined;
  feeder.stop();
  const { ticks } = await ask<{ ticks: number[][] }>(gen, { cmd: 'ticks' });
  for (const s of [...streams, ...injections]) s.cancel();
  for (const ws of connected) ws.terminate();
  backend?.close();
  gen.send({ cmd: 'stop' });
  client.close();
  await svc.stop(process.env.BENCH_CPU_PROF ? 'SIGTERM' : 'SIGKILL');
  rmSync(fileRoot, { recursive: true, force: true });
  // A frame's last sample is caller tick ts + 159; tick k of the generator carried (k + 1) * 160,
  // sent by phone i in phase i % phases.
  const clientLat = arrivals
    .slice(a0, a1)
    .map((a) => {
      const sent = ticks[a.phone % ticks.length]![Math.floor((a.ts + 159) / 160) - 1];
      return sent === undefined ? NaN : a.at - sent;
    })
    .filter((x) => Number.isFinite(x))
    .sort((x, y) => x - y);
  const row: Record<string, unknown> = {
    kind,
    calls: n,
    'service_cpu_%': pct(cpu, wall),
    'cpu_%_per_call': +(pct(cpu, wall) / n).toFixed(3),
    'load_generator_cpu_%': pct(genCpu, wall),
    service_nice: nice,
    'client_cpu_%': pct(self, wall),
    'client_event_loop_delay_p99/max_ms': `${(clientLoop.percentile(99) / 1e6).toFixed(1)}/${(clientLoop.max / 1e6).toFixed(1)}`,
    out_received_vs_expected: `${out.received}/${out.expected}`,
    out_seq_gaps: out.seqGaps,
    'out_interval_p1/p50/p99_ms': `${out.p01.toFixed(1)}/${out.p50.toFixed(1)}/${out.p99.toFixed(1)}`,
    'wire_interval_p50/p99_ms': `${onWire.p50.toFixed(1)}/${onWire.p99.toFixed(1)}`,
    'wire_out_of_20±5_%': +(onWire.outOfSpec * 100).toFixed(2),
    ...serviceRuntime(x0, x1, wall),
    // How much of the loop's delay was the machine's: its main thread ready to run but not
    // running, and the share of time any task on the machine waited for a CPU.
    service_loop_thread_runqueue_wait_ms_per_s: +(waited / wall).toFixed(1),
    // How often the loop found nothing to do and slept: a loop woken for every packet pays its wake-up each time.
    service_loop_wakeups_per_s: Math.round(woke / wall),
    'machine_cpu_pressure_%': +((100 * pressure) / (wall * 1000)).toFixed(1),
    service_rss_mb: +(rss / 2 ** 20).toFixed(1),
  };
  if (kind !== 'echo') {
    row.fork_frames_per_s = Math.round((f1 - f0) / wall);
    row['fork_latency_service_p50/p99_ms'] = `${(histogramQuantile(m0, m1, 0.5) * 1000).toFixed(2)}/${(histogramQuantile(m0, m1, 0.99) * 1000).toFixed(2)}`;
  }
  if (clientLat.length) row['fork_latency_client_p50/p99_ms'] = `${percentile(clientLat, 0.5).toFixed(2)}/${percentile(clientLat, 0.99).toFixed(2)}`;
  if (recording) row.recordings = recording;
  if (typeof injection === 'string') row['injection_latency_p50/p99_ms'] = injection;
  else if (injection) row['injection_latency_p50/p99_ms'] = `${percentile(injection, 0.5).toFixed(1)}/${percentile(injection, 0.99).toFixed(1)}`;
  return row;
}

// BENCH_NODE_ARGS: variants of the service's own Node flags, separated by ';' (empty: as it
// ships), each measured at every level and kind; BENCH_REPEAT runs them that many times, in
// turns, and prints the medians: one run on a shared machine varies by a third.
// BENCH_PRIORITY: the service's MEDIA_PRIORITY values to compare, separated by ',' (empty: as shipped).
const variants = (process.env.BENCH_NODE_ARGS ?? '')
  .split(';')
  .map((v) => v.trim())
  .flatMap((args) => (process.env.BENCH_PRIORITY ?? '').split(',').map((priority) => ({ args, priority: priority.trim() })));
const label = (v: { args: string; priority: string }): string => [v.args || '(as shipped)', v.priority ? `MEDIA_PRIORITY=${v.priority}` : ''].filter(Boolean).join(' ');
const repeat = Math.max(1, Number(process.env.BENCH_REPEAT ?? 1));
console.log(`ai-calls benchmark: ${seconds} s per measurement, levels ${levels.join(',')}; the load generator (RTP phones) and the gRPC client (this process) share the machine; phones send in ${process.env.BENCH_PHONE_PHASES ?? 10} phases of the 20 ms period (BENCH_PHONE_PHASES=1: one burst); the client's HTTP/2 connection window is ${CLIENT_WINDOW} bytes (BENCH_CLIENT_WINDOW)`);
const rows: Record<string, unknown>[] = [];
for (let r = 0; r < repeat; r++) {
  for (const n of levels) {
    for (const kind of kinds) {
      for (const v of kind === 'grpc-floor' ? [variants[0]!] : variants) {
        const row = kind === 'grpc-floor' ? await floor(n) : await calls(kind, n, v.args ? v.args.split(/\s+/) : [], v.priority);
        if (variants.length > 1 && kind !== 'grpc-floor') row.variant = label(v);
        rows.push(row);
        console.log(JSON.stringify(row));
      }
    }
  }
}
if (repeat > 1) {
  const groups = Map.groupBy(rows, (r) => `${String(r.kind)}|${String(r.calls)}|${String(r.variant ?? '')}`);
  const med = (xs: number[]): number => +median(xs).toFixed(3);
  for (const g of groups.values()) {
    const num = (key: string, at = 0): number[] => g.map((r) => Number(String(r[key] ?? NaN).split('/')[at]));
    console.log(JSON.stringify({
      median_of: g.length,
      kind: g[0]!.kind,
      calls: g[0]!.calls,
      ...(g[0]!.variant ? { variant: g[0]!.variant } : {}),
      'cpu_%_per_call': med(num('cpu_%_per_call')),
      ...(g[0]!.kind !== 'grpc-floor'
        ? {
            out_interval_p99_ms: med(num('out_interval_p1/p50/p99_ms', 2)),
            wire_interval_p99_ms: med(num('wire_interval_p50/p99_ms', 1)),
            'wire_out_of_20±5_%': med(num('wire_out_of_20±5_%')),
            gc_major_per_s: med(num('gc_minor/major_per_s', 1)),
            gc_ms_per_s: med(num('gc_ms_per_s')),
            clock_late_ticks: med(num('clock_late_ticks')),
            'event_loop_delay_max_ms': med(num('event_loop_delay_p99/max_ms', 1)),
            ...(g[0]!['fork_latency_client_p50/p99_ms'] ? { fork_latency_client_p99_ms: med(num('fork_latency_client_p50/p99_ms', 1)) } : {}),
            ...(g[0]!['injection_latency_p50/p99_ms'] ? { injection_latency_p99_ms: med(num('injection_latency_p50/p99_ms', 1)) } : {}),
            service_loop_thread_runqueue_wait_ms_per_s: med(num('service_loop_thread_runqueue_wait_ms_per_s')),
            service_loop_wakeups_per_s: med(num('service_loop_wakeups_per_s')),
            service_rss_mb: med(num('service_rss_mb')),
          }
        : {}),
    }));
  }
}
