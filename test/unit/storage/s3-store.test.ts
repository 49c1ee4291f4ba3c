import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import type { Config } from '../../../src/config/schema.ts';
import { S3Store, type S3Timeouts } from '../../../src/storage/s3-store.ts';
import { FileStore } from '../../../src/storage/file-store.ts';
import { classifyStoreFailure } from '../../../src/storage/store-error.ts';
import { S3Server } from '../../helpers/s3-server.ts';

const ID_A = 'aaaaaaaa-0000-4000-8000-000000000001';
const ID_B = 'bbbbbbbb-0000-4000-8000-000000000002';
const FAST: S3Timeouts = { connectMs: 500, idleMs: 500, requestMs: 2000 };

const bucketConfig = (endpoint: string, keys: { id: string; secret: string } = { id: 'S3RVER', secret: 'S3RVER' }): Config['bucket'] => ({
  endpoint_url: endpoint,
  region: 'us-east-1',
  access_key_id: keys.id,
  secret_access_key: keys.secret,
  name: 'recordings',
  force_path_style: true,
});

function storeFor(config: Config['bucket'], timeouts = FAST): { store: S3Store; close: () => void } {
  const store = new S3Store({ config, local: new FileStore(), timeouts });
  return { store, close: () => store.destroy() };
}

const dir = mkdtempSync(join(tmpdir(), 's3-store-'));
const local = (name: string, body: string): string => (writeFileSync(join(dir, name), body), join(dir, name));
const wav = { contentType: 'audio/wav' };

describe('S3 store against a real S3-compatible server', () => {
  const s3 = new S3Server('recordings');
  let store: S3Store;
  let close: () => void;
  before(async () => {
    await s3.start();
    ({ store, close } = storeFor(bucketConfig(s3.endpoint)));
  });
  after(async () => {
    close();
    await s3.stop();
  });

  test('a key another recording holds is never replaced: the recording takes <key>-<id8>, tagged with its id', async () => {
    const dest = { kind: 's3', bucket: 'recordings', key: 'calls/one.wav' } as const;
    const first = await store.put(local('a.wav', 'first'), dest, { ...wav, recordingId: ID_A });
    assert.equal(first.uri, 's3://recordings/calls/one.wav');
    assert.equal(first.renamed, false);
    const second = await store.put(local('b.wav', 'second'), dest, { ...wav, recordingId: ID_B });
    assert.equal(second.uri, 's3://recordings/calls/one-bbbbbbbb.wav');
    assert.equal(second.renamed, true);
    assert.equal(second.publicUrl, `${s3.endpoint}/recordings/calls/one-bbbbbbbb.wav`);
    assert.equal((await s3.get('calls/one.wav')).toString(), 'first');
    assert.equal((await s3.get('calls/one-bbbbbbbb.wav')).toString(), 'second');
    const c = s3.client();
    const head = await c.send(new HeadObjectCommand({ Bucket: 'recordings', Key: 'calls/one-bbbbbbbb.wav' }));
    c.destroy();
    assert.equal(head.Metadata?.['recording-id'], ID_B);
  });

  test('a retry of a recording whose upload already landed finds it done and writes nothing new', async () => {
    const dest = { kind: 's3', bucket: 'recordings', key: 'calls/retry.wav' } as const;
    const path = local('r.wav', 'retry');
    await store.put(path, dest, { ...wav, recordingId: ID_A });
    const again = await store.put(path, dest, { ...wav, recordingId: ID_A });
    assert.equal(again.uri, 's3://recordings/calls/retry.wav');
    assert.equal(again.renamed, false);
    assert.deepEqual(await s3.keys('calls/retry'), ['calls/retry.wav']);
  });

  test('a missing bucket and refused credentials are permanent failures', async () => {
    await assert.rejects(store.put(local('m.wav', 'x'), { kind: 's3', bucket: 'no-such-bucket', key: 'k.wav' }, { ...wav, recordingId: ID_A }), (err: unknown) => {
      assert.equal(classifyStoreFailure(err), 'permanent', String(err));
      return true;
    });
    const wrong = storeFor(bucketConfig(s3.endpoint, { id: 'NOBODY', secret: 'nothing' }));
    try {
      await assert.rejects(wrong.store.put(local('w.wav', 'x'), { kind: 's3', bucket: 'recordings', key: 'k.wav' }, { ...wav, recordingId: ID_A }), (err: unknown) => {
        assert.equal(classifyStoreFailure(err), 'permanent', String(err));
        return true;
      });
    } finally {
      wrong.close();
    }
  });

  test('the server being down is a transient failure', async () => {
    await s3.stop();
    try {
      await assert.rejects(store.put(local('d.wav', 'x'), { kind: 's3', bucket: 'recordings', key: 'down.wav' }, { ...wav, recordingId: ID_A }), (err: unknown) => {
        assert.equal(classifyStoreFailure(err), 'transient', String(err));
        return true;
      });
    } finally {
      await s3.start();
    }
  });
});

test('an endpoint that accepts and never answers fails the attempt within the timeouts, as transient', async () => {
  const sockets = new Set<Socket>();
  const hung = createTcpServer((s) => sockets.add(s));
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  const { store, close } = storeFor(bucketConfig(`http://127.0.0.1:${(hung.address() as AddressInfo).port}`));
  const t0 = performance.now();
  try {
    await assert.rejects(store.put(local('h.wav', 'x'), { kind: 's3', bucket: 'recordings', key: 'hung.wav' }, { ...wav, recordingId: ID_A }), (err: unknown) => {
      assert.equal(classifyStoreFailure(err), 'transient', String(err));
      return true;
    });
    assert.ok(performance.now() - t0 < 5000, `gave up after ${Math.round(performance.now() - t0)} ms`);
  } finally {
    close();
    for (const s of sockets) s.destroy();
    hung.close();
  }
});

test('S3 itself refusing the write (If-None-Match) moves the recording to the next name', async () => {
  // A server that honours the condition and holds the first key; s3rver ignores If-None-Match.
  const puts: { url: string; headers: IncomingHttpHeaders }[] = [];
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'HEAD') return void res.writeHead(404).end();
      puts.push({ url: req.url ?? '', headers: req.headers });
      if (req.url?.split('?')[0]?.endsWith('/held.wav')) {
        res.writeHead(412, { 'content-type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>');
        return;
      }
      res.writeHead(200, { etag: '"0123456789abcdef0123456789abcdef"' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { store, close } = storeFor(bucketConfig(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { id: 'K', secret: 'S' }));
  try {
    const stored = await store.put(local('p.wav', 'x'), { kind: 's3', bucket: 'recordings', key: 'held.wav' }, { ...wav, recordingId: ID_B });
    assert.equal(stored.uri, 's3://recordings/held-bbbbbbbb.wav');
    assert.deepEqual(puts.map((p) => p.url.split('?')[0]), ['/recordings/held.wav', '/recordings/held-bbbbbbbb.wav']);
    for (const p of puts) {
      assert.equal(p.headers['if-none-match'], '*');
      assert.equal(p.headers['x-amz-meta-recording-id'], ID_B);
    }
  } finally {
    close();
    server.close();
  }
});
