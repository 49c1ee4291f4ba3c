import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A real S3-compatible server (s3rver) in its own process: it can be stopped and started again. */
export class S3Server {
  readonly bucket: string;
  readonly directory = mkdtempSync(join(tmpdir(), 's3rver-'));
  port = 0;
  #proc: ChildProcess | null = null;
  readonly client: () => S3Client;

  constructor(bucket = 'recordings') {
    this.bucket = bucket;
    this.client = () =>
      new S3Client({ endpoint: this.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Environment for the service to use this server. */
  get env(): Record<string, string> {
    return { BUCKET_ENDPOINT_URL: this.endpoint, BUCKET_REGION: 'us-east-1', BUCKET_ACCESS_KEY_ID: 'S3RVER', BUCKET_SECRET_ACCESS_KEY: 'S3RVER', BUCKET_FORCE_PATH_STYLE: 'true', BUCKET_NAME: this.bucket };
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freeTcpPort();
    const proc = spawn(process.execPath, [new URL('./s3rver-main.cjs', import.meta.url).pathname, String(this.port), this.directory, this.bucket], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.#proc = proc;
    const lines = createInterface({ input: proc.stdout! });
    const [line] = (await Promise.race([once(lines, 'line'), once(proc, 'exit').then(() => ['exited'])])) as [string];
    if (!line.startsWith('listening')) throw new Error('s3rver did not start');
  }

  async stop(): Promise<void> {
    const p = this.#proc;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGKILL');
    await once(p, 'exit');
    this.#proc = null;
  }

  async keys(prefix = ''): Promise<string[]> {
    const c = this.client();
    try {
      const r = await c.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix }));
      return (r.Contents ?? []).map((o) => o.Key!);
    } finally {
      c.destroy();
    }
  }

  async get(key: string): Promise<Buffer> {
    const c = this.client();
    try {
      const r = await c.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } finally {
      c.destroy();
    }
  }
}
