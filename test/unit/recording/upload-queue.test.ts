import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogging } from '../../../src/logging/logger.ts';
import { createMetrics } from '../../../src/metrics/metrics.ts';
import { RecordingMetrics } from '../../../src/recording/metrics.ts';
import { metaPath, wavPath, writeMeta, type SpoolMeta } from '../../../src/recording/spool-meta.ts';
import { UploadQueue } from '../../../src/recording/upload-queue.ts';
import type { RecordingStore, StoredObject } from '../../../src/storage/store.ts';

const noSuchBucket = (): Error => Object.assign(new Error('The specified bucket does not exist'), { name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } });
const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });

/** A store that answers from a script, then succeeds. */
class ScriptedStore implements RecordingStore {
  readonly script: (() => Error)[];
  puts = 0;
  constructor(script: (() => Error)[] = []) {
    this.script = script;
  }
  async put(): Promise<StoredObject> {
    this.puts++;
    const next = this.script.shift();
    if (next) throw next();
    return { uri: 's3://recordings/k.wav', publicUrl: 'http://s3/recordings/k.wav', renamed: false };
  }
}

interface Harness {
  queue: UploadQueue;
  lines: Record<string, unknown>[];
  stored: SpoolMeta[];
  metrics: RecordingMetrics;
  scrape: () => Promise<string>;
  /** The spool's metadata when onStored was called. */
  onDiskWhenAnnounced: (string | null)[];
}

function harness(spoolDir: string, store: RecordingStore, permanentFailureAttempts = 3): Harness {
  const lines: Record<string, unknown>[] = [];
  const logging = createLogging({
    config: { service: { name: 'media-service', env: 'test', tenant_id: 't' }, log: { level: 'info', format: 'json' } },
    version: 'test',
    destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  });
  const m = createMetrics();
  const metrics = new RecordingMetrics(m);
  const stored: SpoolMeta[] = [];
  const onDiskWhenAnnounced: (string | null)[] = [];
  const queue = new UploadQueue({
    store,
    spoolDir,
    concurrency: 2,
    maxBackoffMs: 5,
    permanentFailureAttempts,
    logging,
    metrics,
    onStored: (meta) => {
      stored.push(meta);
      const p = metaPath(spoolDir, meta.id);
      onDiskWhenAnnounced.push(existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as SpoolMeta).state : null);
    },
  });
  return { queue, lines, stored, metrics, scrape: () => m.registry.metrics(), onDiskWhenAnnounced };
}

async function finalized(spoolDir: string): Promise<SpoolMeta> {
  const meta: SpoolMeta = {
    id: randomUUID(),
    callId: 'call-1',
    traceId: 'call-1',
    tenantId: 't',
    destination: { kind: 's3', bucket: 'recordings', key: 'k.wav' },
    format: 'wav',
    sampleRate: 8000,
    channels: 1,
    state: 'finalized',
    startedAt: new Date().toISOString(),
    attempts: 0,
    permanentFailures: 0,
  };
  writeFileSync(wavPath(spoolDir, meta.id), Buffer.alloc(44));
  await writeMeta(spoolDir, meta);
  return meta;
}

const onDisk = (spoolDir: string, id: string): SpoolMeta => JSON.parse(readFileSync(metaPath(spoolDir, id), 'utf8')) as SpoolMeta;
const events = (h: Harness, name: string): Record<string, unknown>[] => h.lines.filter((l) => l.event === name);
const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await settle(5);
  }
}
const metric = (text: string, line: string): boolean => text.split('\n').includes(line);

test('a store refusing for good parks the recording as failed after the configured attempts: kept, logged once, counted', async () => {
  const spool = mkdtempSync(join(tmpdir(), 'uq-'));
  const store = new ScriptedStore(Array.from({ length: 10 }, () => noSuchBucket));
  const h = harness(spool, store, 3);
  const meta = await finalized(spool);
  h.queue.enqueue(meta);
  await until(() => events(h, 'RECORDING_UPLOAD_FAILED_PERMANENTLY').length === 1);
  await settle(100);
  assert.equal(store.puts, 3, 'no attempt after it was parked');
  assert.equal(events(h, 'RECORDING_UPLOAD_FAILED').length, 2);
  assert.equal(events(h, 'RECORDING_UPLOAD_FAILED_PERMANENTLY').length, 1);
  assert.equal(h.queue.pending, 0);
  assert.equal(h.queue.failed, 1);
  const disk = onDisk(spool, meta.id);
  assert.equal(disk.state, 'failed');
  assert.equal(disk.attempts, 3);
  assert.equal(disk.permanentFailures, 3);
  assert.match(disk.lastError ?? '', /NoSuchBucket/);
  assert.ok(existsSync(wavPath(spool, meta.id)), 'the audio is kept');
  const text = await h.scrape();
  assert.ok(metric(text, 'sentiric_media_recording_uploads_total{result="failed_permanently"} 1'), text);
  assert.ok(metric(text, 'sentiric_media_recording_uploads_total{result="failed"} 3'));
  assert.ok(metric(text, 'sentiric_media_recordings_failed 1'));
  assert.ok(metric(text, 'sentiric_media_recording_uploads_pending 0'));
  assert.equal(h.stored.length, 0);
  h.queue.close();
});

test('a failed recording gets one attempt per start: refused again it stays failed, accepted it is stored once', async () => {
  const spool = mkdtempSync(join(tmpdir(), 'uq-'));
  const meta = await finalized(spool);
  await writeMeta(spool, { ...meta, state: 'failed', attempts: 3, permanentFailures: 3 });

  const stillRefusing = new ScriptedStore(Array.from({ length: 10 }, () => noSuchBucket));
  const first = harness(spool, stillRefusing);
  first.queue.enqueue(onDisk(spool, meta.id));
  await until(() => events(first, 'RECORDING_UPLOAD_STILL_FAILED').length === 1);
  await settle(100);
  assert.equal(stillRefusing.puts, 1);
  assert.equal(events(first, 'RECORDING_UPLOAD_FAILED_PERMANENTLY').length, 0, 'parked once, not announced as new');
  assert.equal(onDisk(spool, meta.id).state, 'failed');
  assert.equal(onDisk(spool, meta.id).attempts, 4);
  assert.equal(first.queue.failed, 1);
  first.queue.close();

  const fixed = new ScriptedStore();
  const second = harness(spool, fixed);
  second.queue.enqueue(onDisk(spool, meta.id));
  await until(() => second.stored.length === 1);
  await until(() => readdirSync(spool).length === 0);
  const storedLine = events(second, 'RECORDING_STORED')[0]!;
  assert.equal((storedLine.attributes as Record<string, unknown>)['recording.attempts'], 5, 'attempts count across starts');
  assert.equal(second.queue.failed, 0);
  assert.ok(metric(await second.scrape(), 'sentiric_media_recordings_failed 0'));
  second.queue.close();
});

test('a failed recording whose one attempt meets no answer goes back to ordinary retries', async () => {
  const spool = mkdtempSync(join(tmpdir(), 'uq-'));
  const meta = await finalized(spool);
  await writeMeta(spool, { ...meta, state: 'failed', attempts: 3, permanentFailures: 3 });
  const store = new ScriptedStore([refused, refused]);
  const h = harness(spool, store);
  h.queue.enqueue(onDisk(spool, meta.id));
  await until(() => h.stored.length === 1);
  assert.equal(store.puts, 3);
  assert.equal(h.queue.failed, 0);
  h.queue.close();
});

test('transient failures are retried for as long as it takes, and their count is kept in the spool', async () => {
  const spool = mkdtempSync(join(tmpdir(), 'uq-'));
  const store = new ScriptedStore(Array.from({ length: 6 }, () => refused));
  const h = harness(spool, store, 3);
  const meta = await finalized(spool);
  h.queue.enqueue(meta);
  // Retries are milliseconds apart here: by the time this looks, more may have happened.
  await until(() => events(h, 'RECORDING_UPLOAD_FAILED').length >= 4);
  assert.ok(onDisk(spool, meta.id).attempts >= 4, 'attempts are written as they happen');
  assert.notEqual(onDisk(spool, meta.id).state, 'failed', 'transient failures never park a recording');
  await until(() => h.stored.length === 1);
  assert.equal(store.puts, 7);
  assert.equal(events(h, 'RECORDING_UPLOAD_FAILED_PERMANENTLY').length, 0);
  assert.ok(events(h, 'RECORDING_UPLOAD_FAILED').every((l) => (l.attributes as Record<string, unknown>)['recording.failure'] === 'transient'));
  h.queue.close();
});

test('permanent_failure_attempts = 0 keeps retrying refusals', async () => {
  const spool = mkdtempSync(join(tmpdir(), 'uq-'));
  const store = new ScriptedStore(Array.from({ length: 5 }, () => noSuchBucket));
  const h = harness(spool, store, 0);
  h.queue.enqueue(await finalized(spool));
  await until(() => h.stored.length === 1);
  assert.equal(store.puts, 6);
  assert.equal(h.queue.failed, 0);
  h.queue.close();
});

test('the spool says stored before the recording is announced, and it is announced once', async () => {
  const spool = mkdtempSync(join(tmpdir(), 'uq-'));
  const h = harness(spool, new ScriptedStore());
  const meta = await finalized(spool);
  h.queue.enqueue(meta);
  h.queue.enqueue(meta);
  await until(() => readdirSync(spool).length === 0);
  await settle(50);
  assert.deepEqual(h.onDiskWhenAnnounced, ['stored']);
  assert.equal(h.stored.length, 1);
  h.queue.close();
});
