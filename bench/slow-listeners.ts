// Slow fork listeners: (1) how much audio a StreamAudio/RecordAudio client that stops reading
// leaves buffered between the fork and the client (gRPC and HTTP/2 buffers on both sides,
// the kernel's TCP buffers) before the fork's own bounded queue starts dropping its oldest
// frames; (2) the service's RSS over a minute with several stalled listeners on one call,
// next to one listener that keeps reading. Numbers, not pass/fail.
//
// Two kinds of stalled grpc-js client: one that read and then paused (its HTTP/2 stream
// window closes: the service feels back-pressure), and one that never started reading
// (grpc-js then keeps pulling messages into its own unbounded array, so the service sees a
// healthy reader and the client's memory grows instead).
import { execFileSync, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import { startService, type RunningService } from '../test/helpers/service.ts';
import { TestClient } from '../test/helpers/grpc-client.ts';
import { rssBytes } from './lib/proc.ts';
import { ask, benchEnv } from './lib/harness.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 60);
const stalledCount = Number(process.env.BENCH_STALLED ?? 4);

type Stream = grpc.ClientReadableStream<unknown>;
type Open = (r: unknown) => Stream;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mb = (b: number): number => +(b / 2 ** 20).toFixed(1);

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function forkCounters(svc: RunningService): Promise<{ written: number; dropped: number }> {
  const text = await (await fetch(svc.url('/metrics'))).text();
  return { written: metric(text, 'sentiric_media_fork_frames_total'), dropped: metric(text, 'sentiric_media_fork_frames_dropped_total') };
}

/** Bytes waiting in the kernel on the gRPC connections: the service's send queue, the clients' receive queue. */
function kernelQueues(grpcPort: number): { serverSendQ: number; clientRecvQ: number } {
  const out = execFileSync('ss', ['-tnH', 'state', 'established'], { encoding: 'utf8' });
  let serverSendQ = 0;
  let clientRecvQ = 0;
  for (const l of out.split('\n')) {
    const f = l.trim().split(/\s+/);
    if (f.length < 4) continue;
    const [recvQ, sendQ, local, peer] = [Number(f[0]), Number(f[1]), f[2]!, f[3]!];
    if (local.endsWith(`:${grpcPort}`)) serverSendQ += sendQ;
    if (peer.endsWith(`:${grpcPort}`)) clientRecvQ += recvQ;
  }
  return { serverSendQ, clientRecvQ };
}

async function openCall(client: TestClient, gen: ReturnType<typeof fork>, callId: string): Promise<number> {
  const port = (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId })).response!.rtp_port;
  const { port: phone } = await ask<{ port: number }>(gen, { cmd: 'add', target: port });
  await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: `127.0.0.1:${phone}` });
  // The service answers with the caller's own audio, so the service side is never empty.
  await client.media_('PlayAudio', { audio_uri: 'control://enable_echo', server_rtp_port: port });
  return port;
}

const KINDS: { label: string; method: string; req: (port: number) => Record<string, unknown>; frameBytes: number; queueMs: number }[] = [
  { label: 'StreamAudio stereo 48 kHz L16, max_queue_ms 200', method: 'StreamAudio', req: (p) => ({ server_rtp_port: p, source: 'AUDIO_SOURCE_STEREO', sample_rate: 48000, max_queue_ms: 200 }), frameBytes: 3840, queueMs: 200 },
  { label: 'RecordAudio 16 kHz (queue 5000 ms)', method: 'RecordAudio', req: (p) => ({ server_rtp_port: p, target_sample_rate: 16000 }), frameBytes: 640, queueMs: 5000 },
];

type Stall = 'paused' | 'never-read';

/** A listener that stops reading: after its first message ('paused'), or from the start. */
function stalled(own: TestClient, method: string, req: unknown, how: Stall): Stream {
  const s = ((own.media as unknown as Record<string, Open>)[method]!)(req);
  s.on('error', () => {});
  if (how === 'paused') s.once('data', () => s.pause());
  return s;
}

/** One stalled listener on its own connection: when do drops start, and what was written by then. */
async function bufferedBeforeDrop(svc: RunningService, port: number, kind: (typeof KINDS)[number], how: Stall, capMs: number): Promise<Record<string, unknown>> {
  const own = new TestClient(svc.grpcPort);
  const c0 = await forkCounters(svc);
  const s = stalled(own, kind.method, kind.req(port), how);
  const t0 = performance.now();
  let c = c0;
  let kernel = kernelQueues(svc.grpcPort);
  while (performance.now() - t0 < capMs) {
    await sleep(50);
    c = await forkCounters(svc);
    if (c.dropped > c0.dropped) break;
    kernel = kernelQueues(svc.grpcPort);
  }
  const firstDropS = c.dropped > c0.dropped ? +((performance.now() - t0) / 1000).toFixed(2) : `none in ${capMs / 1000} s`;
  const written = c.written - c0.written;
  s.cancel();
  own.close();
  await sleep(300);
  return {
    listener: kind.label,
    client: how,
    first_drop_after_s: firstDropS,
    frames_written_to_grpc_before_drop: written,
    audio_bytes_written_before_drop: written * kind.frameBytes,
    audio_seconds_in_transport: +((written * 20) / 1000).toFixed(2),
    fork_queue_ms: kind.queueMs,
    kernel_server_send_q_bytes: kernel.serverSendQ,
    kernel_client_recv_q_bytes: kernel.clientRecvQ,
  };
}

async function main(): Promise<void> {
  const svc = await startService({ env: benchEnv() });
  const client = new TestClient(svc.grpcPort);
  const gen = fork(fileURLToPath(new URL('./lib/load-generator.ts', import.meta.url)), { stdio: 'inherit' });
  try {
    const port = await openCall(client, gen, 'slow-listeners');
    await ask(gen, { cmd: 'send' });
    await sleep(1000);
    for (const kind of KINDS) console.log(JSON.stringify(await bufferedBeforeDrop(svc, port, kind, 'paused', 30_000)));
    console.log(JSON.stringify(await bufferedBeforeDrop(svc, port, KINDS[0]!, 'never-read', 10_000)));

    // RSS over time: stalled listeners of both kinds, each on its own connection, and one reader.
    await sleep(2000);
    const rss0 = rssBytes(svc.proc.pid!);
    const clients: TestClient[] = [];
    const streams: Stream[] = [];
    // Paused readers (the default 5 s queue each, stereo 48 kHz and RecordAudio), plus one
    // grpc-js client that never reads (its audio flows to it: the service must stay flat too).
    for (let i = 0; i <= stalledCount; i++) {
      const own = new TestClient(svc.grpcPort);
      clients.push(own);
      if (i === stalledCount) streams.push(stalled(own, 'StreamAudio', { server_rtp_port: port, source: 'AUDIO_SOURCE_STEREO', sample_rate: 48000 }, 'never-read'));
      else if (i % 2 === 0) streams.push(stalled(own, 'StreamAudio', { server_rtp_port: port, source: 'AUDIO_SOURCE_STEREO', sample_rate: 48000 }, 'paused'));
      else streams.push(stalled(own, 'RecordAudio', KINDS[1]!.req(port), 'paused'));
    }
    let readerFrames = 0;
    const reader = (client.media as unknown as Record<string, Open>).RecordAudio!({ server_rtp_port: port, target_sample_rate: 16000 });
    reader.on('data', () => readerFrames++);
    reader.on('error', () => {});
    const samples: Record<string, unknown>[] = [];
    const start = performance.now();
    let lastFrames = 0;
    let lastAt = start;
    for (let t = 5; t <= seconds; t += 5) {
      await sleep(start + t * 1000 - performance.now());
      const now = performance.now();
      const c = await forkCounters(svc);
      samples.push({ t_s: t, rss_mb: mb(rssBytes(svc.proc.pid!)), fork_frames_dropped_total: c.dropped, reader_frames_per_s: Math.round(((readerFrames - lastFrames) * 1000) / (now - lastAt)), ...kernelQueues(svc.grpcPort) });
      lastFrames = readerFrames;
      lastAt = now;
    }
    for (const s of samples) console.log(JSON.stringify(s));
    const rss = samples.map((s) => s.rss_mb as number);
    console.log(
      JSON.stringify({
        paused_listeners: stalledCount,
        never_reading_listeners: 1,
        rss_before_listeners_mb: mb(rss0),
        rss_at_10s_mb: rss[1],
        rss_at_end_mb: rss.at(-1),
        rss_max_mb: Math.max(...rss),
      }),
    );
    for (const s of streams) s.cancel();
    reader.cancel();
    for (const c of clients) c.close();
  } finally {
    gen.send({ cmd: 'stop' });
    client.close();
    await svc.stop('SIGKILL');
  }
}

console.log(`slow-listeners benchmark: ${stalledCount} stalled listeners for ${seconds} s`);
await main();
