// The container image, built by scripts/image.sh (buildah, no Docker daemon) and run with
// buildah: its CMD starts the service as a non-root user, which answers health checks, plays
// prompts to a phone on the host, records to its own disk, and exits 0 on SIGTERM.
// IMAGE_TEST=0 skips it (the first build takes several minutes; later ones reuse layers).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { TestClient, eventually } from '../helpers/grpc-client.ts';
import { RtpPeer } from '../helpers/rtp-peer.ts';
import { freePortRun } from '../helpers/ports.ts';
import { REPO_ROOT } from '../helpers/service.ts';

const skip = process.env.IMAGE_TEST === '0' ? 'IMAGE_TEST=0: the container image test is skipped' : false;
// Explicit everywhere, so a shorter --test-timeout of the whole suite does not cut the build.
const BUILD_TIMEOUT_MS = 30 * 60_000;
const TEST_TIMEOUT = { timeout: 120_000 };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; never rejects (the caller asserts on the result). */
function run(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<Run & { raw: Buffer }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: REPO_ROOT, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'buffer' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8'), raw: stdout });
    });
  });
}

/** `bash scripts/image.sh build`, progress lines shown, the rest kept for a failure message. */
async function buildImage(): Promise<{ ms: number; output: string[] }> {
  const t0 = performance.now();
  const proc = spawn('bash', ['scripts/image.sh', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const onLine = (line: string): void => {
    output.push(line);
    if (output.length > 400) output.shift();
    if (/^((\[\d+\/\d+\] )?STEP \d+\/\d+|\[image\]|image .* size )/.test(line)) console.log(`  ${line.slice(0, 160)}`);
  };
  createInterface({ input: proc.stdout! }).on('line', onLine);
  createInterface({ input: proc.stderr! }).on('line', onLine);
  const [code] = (await once(proc, 'exit')) as [number | null];
  assert.equal(code, 0, `scripts/image.sh build failed (${code}):\n${output.slice(-80).join('\n')}`);
  return { ms: performance.now() - t0, output };
}

/** A 440 Hz tone, 16-bit little-endian PCM at 8 kHz. */
function tonePcm(ms: number): Buffer {
  const n = (8000 * ms) / 1000;
  const buf = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) buf.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000)), i * 2);
  return buf;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/**
 * The image's CMD process under `buildah run` (which runs it through buildah-chroot-runtime
 * and buildah-chroot-exec): the outermost descendant whose program is node. Node names its
 * main thread, so /proc/PID/comm says MainThread; argv[0] says node.
 */
function serviceProcess(rootPid: number): number | undefined {
  const queue = [rootPid];
  while (queue.length) {
    const pid = queue.shift()!;
    for (const child of childrenOf(pid)) {
      let argv0 = '';
      try {
        argv0 = readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0')[0] ?? '';
      } catch {
        continue;
      }
      if (basename(argv0) === 'node') return child;
      queue.push(child);
    }
  }
  return undefined;
}

function uids(pid: number): number[] {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'));
  return (line ?? '').split(/\s+/).slice(1).filter(Boolean).map(Number);
}

describe('the container image', { skip, timeout: BUILD_TIMEOUT_MS + 10 * 60_000 }, () => {
  let image = '';
  let ctr = '';
  let service: ChildProcess | undefined;
  let serviceExit: Promise<number | null> | undefined;
  const logs: string[] = [];
  let client: TestClient | undefined;
  let grpcPort = 0;
  let httpPort = 0;
  const url = (path: string): string => `http://127.0.0.1:${httpPort}${path}`;
  const buildah = (...args: string[]) => run('buildah', args);
  const inside = (...cmd: string[]) => run('buildah', ['run', '--isolation', 'chroot', '--network', 'host', ctr, '--', ...cmd]);

  before(
    async () => {
      const built = await buildImage();
      const size = built.output.find((l) => /^image .* size /.test(l));
      console.log(`image built in ${(built.ms / 1000).toFixed(0)} s; ${size ?? (await run('bash', ['scripts/image.sh', 'size'])).stdout.trim()}`);
      image = (await run('bash', ['scripts/image.sh', 'name'])).stdout.trim();

      const made = await buildah('from', '--pull=never', '--name', `media-image-test-${process.pid}`, image);
      assert.equal(made.code, 0, made.stderr);
      ctr = made.stdout.trim();

      // `buildah run` needs the command spelled out: the image's own entrypoint and CMD.
      const cfg = await buildah('inspect', '--type', 'container', ctr);
      const config = (JSON.parse(cfg.stdout) as { OCIv1: { config: { Cmd?: string[]; Entrypoint?: string[] } } }).OCIv1.config;
      const cmd = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
      assert.ok(cmd.length > 0, 'the image has a CMD');

      grpcPort = await freePortRun(1, { lo: 20000, hi: 22000, proto: 'tcp' });
      httpPort = await freePortRun(1, { lo: 22000, hi: 24000, proto: 'tcp' });
      const rtpMin = await freePortRun(20, { lo: 30000, hi: 32000, proto: 'udp' });
      const env: Record<string, string> = {
        MEDIA_SERVICE_GRPC_PORT: String(grpcPort),
        MEDIA_SERVICE_METRICS_PORT: String(httpPort),
        MEDIA_SERVICE_GRPC_LISTEN_ADDRESS: '127.0.0.1',
        MEDIA_SERVICE_METRICS_LISTEN_ADDRESS: '127.0.0.1',
        RTP_SERVICE_LISTEN_ADDRESS: '127.0.0.1',
        RTP_SERVICE_PORT_MIN: String(rtpMin),
        RTP_SERVICE_PORT_MAX: String(rtpMin + 19),
        WEBRTC_LISTEN_IP: '127.0.0.1',
        WEBRTC_PORT: String(await freePortRun(1, { lo: 24000, hi: 30000 })),
        MEDIASOUP_NUM_WORKERS: '1',
        MEDIA_SHARDS: '1',
        // Asked of a non-root user without RLIMIT_NICE: refused, said, and the service runs on.
        MEDIA_PRIORITY: '-10',
      };
      const envArgs = Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
      service = spawn('buildah', ['run', '--isolation', 'chroot', '--network', 'host', ...envArgs, ctr, '--', ...cmd], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      serviceExit = once(service, 'exit').then(([code]) => code as number | null);
      createInterface({ input: service.stdout! }).on('line', (l) => logs.push(l));
      createInterface({ input: service.stderr! }).on('line', (l) => logs.push(`stderr: ${l}`));
      const exitedEarly = serviceExit.then((code) => {
        throw new Error(`the service in the container exited (${code}) before it was ready:\n${logs.slice(-30).join('\n')}`);
      });
      exitedEarly.catch(() => {});
      await Promise.race([
        eventually(async () => (await fetch(url('/readyz'))).status === 200, 90_000, 250),
        exitedEarly,
      ]);
      client = new TestClient(grpcPort);
    },
    { timeout: BUILD_TIMEOUT_MS },
  );

  after(async () => {
    client?.close();
    if (service && service.exitCode === null && service.signalCode === null) {
      try {
        process.kill(-service.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      await serviceExit;
    }
    if (ctr) await buildah('rm', ctr);
  });

  test('the service runs as a non-root user, and so does any command in the image', TEST_TIMEOUT, async () => {
    const pid = serviceProcess(service!.pid!);
    assert.ok(pid, 'the service process under buildah run');
    const ids = uids(pid);
    assert.equal(ids.length, 4);
    for (const id of ids) assert.notEqual(id, 0, `uids of the service: ${ids.join(' ')}`);
    const id = await inside('id', '-u');
    assert.equal(id.code, 0, id.stderr);
    assert.notEqual(id.stdout.trim(), '0');
  });

  test('MEDIA_PRIORITY: the media loop runs at it, or the service says why not and how to allow it', TEST_TIMEOUT, async () => {
    const pid = serviceProcess(service!.pid!);
    assert.ok(pid, 'the service process under buildah run');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    const events = logs.flatMap((l) => {
      try {
        return [JSON.parse(l) as { event?: string; message?: string }];
      } catch {
        return [];
      }
    });
    // A non-root user may lower its nice value only as far as RLIMIT_NICE lets it.
    if (nice === -10) assert.ok(events.some((e) => e.event === 'MEDIA_PRIORITY_SET'));
    else assert.match(events.find((e) => e.event === 'MEDIA_PRIORITY_NOT_SET')?.message ?? '', /ulimit nice=30/, `nice ${nice}`);
  });

  test('no compiler, build tool or npm in the image', TEST_TIMEOUT, async () => {
    const found = await inside('sh', '-c', 'for c in gcc g++ cc c++ clang make ld as npm; do command -v "$c"; done; true');
    assert.equal(found.code, 0, found.stderr);
    assert.equal(found.stdout.trim(), '', `found in the image: ${found.stdout}`);
  });

  test('the web demo bundles with the esbuild in the image, as the service user', TEST_TIMEOUT, async () => {
    // ENV=production leaves the demo off; SIGNALING_DEMO_ENABLED=true bundles it at start-up.
    const script = "import('./src/web-demo/demo-route.ts').then((m) => m.buildWebDemo('/signaling')).then((a) => console.log([...a.keys()].join(' ')))";
    const r = await inside('node', '-e', script);
    assert.equal(r.code, 0, r.stderr);
    for (const path of ['/', '/demo/main.js', '/demo/style.css']) assert.ok(r.stdout.trim().split(' ').includes(path), `${path} in ${r.stdout}`);
  });

  test('/readyz, /metrics and grpc.health.v1 answer from outside the container', TEST_TIMEOUT, async () => {
    assert.equal((await fetch(url('/readyz'))).status, 200);
    assert.equal((await client!.check()).response?.status, 'SERVING');
    const metrics = await (await fetch(url('/metrics'))).text();
    assert.match(metrics, /^sentiric_media_/m);
  });

  test('a call: a prompt (PCM, then MP3 through ffmpeg) reaches a phone on the host, and is recorded as MP3 on the image disk', TEST_TIMEOUT, async () => {
    const callId = `image-${process.pid}`;
    const alloc = await client!.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId });
    assert.equal(alloc.error, undefined, alloc.error?.details);
    const port = alloc.response!.rtp_port;
    const peer = await RtpPeer.open();
    try {
      const target = await client!.media_<{ success: boolean }>('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: peer.address });
      assert.equal(target.error, undefined, target.error?.details);
      const rec = await client!.media_('StartRecording', { server_rtp_port: port, output_uri: 'file:///image-test/', format: 'mp3', call_id: callId });
      assert.equal(rec.error, undefined, rec.error?.details);

      const pcm = `data:audio/pcm;rate=8000;base64,${tonePcm(1000).toString('base64')}`;
      const played = await client!.media_<{ success: boolean; message: string }>('PlayAudio', { audio_uri: pcm, server_rtp_port: port });
      assert.equal(played.error, undefined, played.error?.details);
      await eventually(() => peer.received.length >= 45, 10_000);

      // An MP3 made by the image's ffmpeg, decoded by the service through it.
      const mp3 = await run('buildah', ['run', '--isolation', 'chroot', ctr, '--', 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-ar', '8000', '-c:a', 'libmp3lame', '-b:a', '32k', '-f', 'mp3', '-']);
      assert.equal(mp3.code, 0, mp3.stderr);
      assert.ok(mp3.raw.length > 1000, `ffmpeg made ${mp3.raw.length} bytes of MP3`);
      const before = peer.received.length;
      const playedMp3 = await client!.media_<{ success: boolean }>('PlayAudio', { audio_uri: `data:audio/mpeg;base64,${mp3.raw.toString('base64')}`, server_rtp_port: port });
      assert.equal(playedMp3.error, undefined, playedMp3.error?.details);
      await eventually(() => peer.received.length >= before + 45, 10_000);
      assert.ok(peer.received.every((p) => p.payloadType === 0 || p.payloadType === 8), 'G.711 to the phone');
      assert.equal(new Set(peer.received.map((p) => p.ssrc)).size, 1);
    } finally {
      await client!.media_('ReleasePort', { rtp_port: port });
      peer.close();
    }
    // Written under /app/var by the service's user, transcoded by ffmpeg: a non-empty MP3.
    const file = await eventually(async () => {
      const r = await inside('find', '/app/var/recordings/image-test', '-name', `${callId}.mp3`, '-size', '+1k');
      return r.stdout.trim();
    }, 30_000, 500);
    assert.match(file, new RegExp(`^/app/var/recordings/image-test/.*/${callId}\\.mp3$`));
    const metrics = await (await fetch(url('/metrics'))).text();
    assert.match(metrics, /^sentiric_media_grpc_requests_total\{[^}]*method="PlayAudio"/m);
  });

  test('SIGTERM to the service stops it cleanly: exit status 0 through buildah run', TEST_TIMEOUT, async () => {
    const pid = serviceProcess(service!.pid!);
    assert.ok(pid, 'the service process under buildah run');
    process.kill(pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([serviceExit!, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 30_000)))]);
    clearTimeout(timer);
    assert.equal(code, 0, `exit ${code}:\n${logs.slice(-20).join('\n')}`);
    const events = logs.flatMap((l) => {
      try {
        return [(JSON.parse(l) as { event?: string }).event];
      } catch {
        return [];
      }
    });
    assert.ok(events.includes('SERVICE_STOPPING'));
    assert.ok(events.includes('SERVICE_STOPPED'));
  });
});
