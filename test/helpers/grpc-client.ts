import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../src/grpc/proto.ts';

export interface UnaryResult<T> {
  response?: T;
  error?: grpc.ServiceError;
  /** Initial metadata the server sent (x-trace-id). */
  metadata?: grpc.Metadata;
}

type UnaryFn = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall;

export class TestClient {
  readonly media: grpc.Client;
  readonly health: grpc.Client;

  constructor(port: number, creds: grpc.ChannelCredentials = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}) {
    const protos = loadProtos();
    this.media = new protos.media(`127.0.0.1:${port}`, creds, options);
    this.health = new protos.health(`127.0.0.1:${port}`, creds, options);
  }

  call<T>(client: grpc.Client, method: string, req: unknown, meta: Record<string, string> = {}, deadlineMs = 5000): Promise<UnaryResult<T>> {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(meta)) md.set(k, v);
    const fn = (client as unknown as Record<string, UnaryFn>)[method];
    if (!fn) throw new Error(`no method ${method}`);
    return new Promise((resolve) => {
      let metadata: grpc.Metadata | undefined;
      const c = fn.call(client, req, md, { deadline: Date.now() + deadlineMs }, (error, response) => {
        resolve(error ? { error, ...(metadata ? { metadata } : {}) } : { response: response as T, ...(metadata ? { metadata } : {}) });
      });
      c.on('metadata', (m: grpc.Metadata) => (metadata = m));
    });
  }

  media_<T>(method: string, req: unknown, meta?: Record<string, string>): Promise<UnaryResult<T>> {
    return this.call<T>(this.media, method, req, meta);
  }

  check(service = ''): Promise<UnaryResult<{ status: string }>> {
    return this.call(this.health, 'Check', { service });
  }

  close(): void {
    this.media.close();
    this.health.close();
  }
}

/** Resolves when `fn` returns a truthy value; polls every `everyMs`. */
export async function eventually<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function metricsText(url: string): Promise<string> {
  const res = await fetch(url);
  return res.text();
}

/** The value of one sample line of a Prometheus exposition, or undefined. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const kv of (m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)) got[kv[1]!] = kv[2]!;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}
