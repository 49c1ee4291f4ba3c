import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { duplicateKey } from './json-line.ts';
import { freePortRun } from './ports.ts';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface LogLine {
  level: string;
  message: string;
  timestamp: string;
  service: string;
  trace_id: string | null;
  call_id: string | null;
  event?: string;
  attributes?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface RunningService {
  proc: ChildProcess;
  grpcPort: number;
  httpPort: number;
  /** Every stdout line parsed as JSON, in order. */
  lines: LogLine[];
  stderr: string[];
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  url(path: string): string;
  /** Stops reading the service's stdout (its pipe fills, as a stalled log shipper's would), or reads it again. */
  readStdout(on: boolean): void;
  /**
   * Waits until no line has come for a moment: the service writes its log asynchronously, so
   * a line of something it did may come after its answer did.
   */
  settle(): Promise<void>;
}

/**
 * Services this process started and that still run. A test or benchmark that fails between
 * start and stop exits without stopping its service, which then holds its ports (a fixed RTP
 * range among them) and CPU under the next run: they go with this process.
 */
const living = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of living) p.kill('SIGKILL');
});

/** The real service as a child process: production JSON logs on stdout, ephemeral ports. */
export async function startService(
  opts: { env?: Record<string, string>; args?: string[]; /** Node's own flags, before the entry */ nodeArgs?: string[]; cwd?: string; /** false: only PATH and HOME, settings come from files */ testDefaults?: boolean } = {},
): Promise<RunningService> {
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
  const env: Record<string, string> = opts.testDefaults === false ? { ...base, ...opts.env } : {
    ...base,
    ENV: 'production',
    LOG_LEVEL: 'debug',
    MEDIA_SERVICE_GRPC_PORT: '0',
    MEDIA_SERVICE_METRICS_PORT: '0',
    MEDIA_SERVICE_GRPC_LISTEN_ADDRESS: '127.0.0.1',
    MEDIA_SERVICE_METRICS_LISTEN_ADDRESS: '127.0.0.1',
    RTP_SERVICE_LISTEN_ADDRESS: '127.0.0.1',
    MEDIASOUP_NUM_WORKERS: '1',
    // One process unless a test asks for shards: most tests look at one process's logs.
    MEDIA_SHARDS: '1',
    // Services of concurrent test files must not share the WebRTC server's port (a shard's
    // workers take one each).
    WEBRTC_LISTEN_IP: '127.0.0.1',
    WEBRTC_PORT: String(await freePortRun(4)),
    ...opts.env,
  };
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), `${REPO_ROOT}/src/main.js`, ...(opts.args ?? [])], {
    cwd: opts.cwd ?? REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  living.add(proc);
  const lines: LogLine[] = [];
  const stderr: string[] = [];
  const waiters = new Set<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  const stdoutLines = createInterface({ input: proc.stdout! });
  let lastLineAt = performance.now();
  stdoutLines.on('line', (raw) => {
    lastLineAt = performance.now();
    let line: LogLine;
    try {
      line = JSON.parse(raw) as LogLine;
    } catch {
      throw new Error(`service wrote a line that is not JSON: ${raw}`);
    }
    const dup = duplicateKey(raw);
    if (dup) throw new Error(`service wrote the key ${dup} twice in one line: ${raw}`);
    lines.push(line);
    for (const w of waiters) {
      if (w.pred(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  });
  createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
  const exited = once(proc, 'exit').then(([code]) => (living.delete(proc), code as number | null));

  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> => {
    const seen = lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (l: LogLine) => (clearTimeout(t), resolve(l)) };
      const t = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`timed out waiting for a log line; stderr: ${stderr.join('\n')}`));
      }, timeoutMs);
      waiters.add(w);
      void exited.then((code) => {
        if (waiters.delete(w)) {
          clearTimeout(t);
          reject(new Error(`service exited (${code}) before the expected log line; stderr: ${stderr.join('\n')}`));
        }
      });
    });
  };

  const started = await waitForLog((l) => l.event === 'SERVICE_STARTED', 30_000);
  const attrs = started.attributes as { 'grpc.port': number; 'http.port': number };
  return {
    proc,
    grpcPort: attrs['grpc.port'],
    httpPort: attrs['http.port'],
    lines,
    stderr,
    waitForLog,
    url: (path) => `http://127.0.0.1:${attrs['http.port']}${path}`,
    readStdout: (on) => (on ? stdoutLines.resume() : stdoutLines.pause()),
    async settle() {
      const until = performance.now() + 2000;
      do await new Promise((r) => setTimeout(r, 50));
      while (performance.now() - lastLineAt < 50 && performance.now() < until);
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Runs the service expecting it to refuse to start; resolves with its exit code and stderr. */
export async function runToExit(env: Record<string, string>, args: string[] = [], cwd = REPO_ROOT): Promise<{ code: number | null; stderr: string }> {
  const proc = spawn(process.execPath, [`${REPO_ROOT}/src/main.js`, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ENV: 'production', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(proc, 'exit')) as [number | null];
  return { code, stderr };
}
