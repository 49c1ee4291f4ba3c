import { stat } from 'node:fs/promises';
import type { Logger, Logging } from '../logging/logger.ts';
import { classifyStoreFailure } from '../storage/store-error.ts';
import type { RecordingStore, StoredObject } from '../storage/store.ts';
import type { RecordingMetrics } from './metrics.ts';
import { mp3Path, removeSpoolEntry, wavPath, writeMeta, type SpoolMeta } from './spool-meta.ts';
import { describeDestination } from './target.ts';

export interface UploadQueueOptions {
  store: RecordingStore;
  spoolDir: string;
  concurrency: number;
  maxBackoffMs: number;
  /** Permanent refusals after which a recording is parked as failed; 0 retries them forever. */
  permanentFailureAttempts: number;
  logging: Logging;
  metrics: RecordingMetrics;
  /** Called once per recording, after the spool says it is stored: it is never announced twice. */
  onStored: (meta: SpoolMeta, stored: StoredObject) => void;
}

/**
 * Finished recordings on their way to storage, off the media path. A transient failure is
 * retried with capped exponential backoff for as long as it takes; a store that keeps
 * refusing a recording for good (no such bucket, access denied) parks it in the spool as
 * failed, to be tried once at each start. Attempts are counted in the spool, so they
 * survive restarts. Spool files go only after the store confirmed the object.
 */
export class UploadQueue {
  readonly #o: UploadQueueOptions;
  readonly #waiting: SpoolMeta[] = [];
  /** Waiting, uploading or backing off. */
  readonly #known = new Set<string>();
  /** Parked as failed in the spool (or on their one attempt of this start). */
  readonly #failed = new Set<string>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #running = 0;
  #closed = false;

  constructor(opts: UploadQueueOptions) {
    this.#o = opts;
  }

  /** Recordings not yet stored (waiting, uploading or backing off). */
  get pending(): number {
    return this.#known.size;
  }

  /** Recordings kept in the spool as failed. */
  get failed(): number {
    return this.#failed.size;
  }

  /** Takes a finalized recording; one in state failed gets a single attempt. */
  enqueue(meta: SpoolMeta): void {
    if (this.#closed || this.#known.has(meta.id)) return;
    this.#known.add(meta.id);
    if (meta.state === 'failed') this.#failed.add(meta.id);
    this.#gauges();
    this.#waiting.push(meta);
    this.#pump();
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #gauges(): void {
    this.#o.metrics.uploadsPending.set(this.#known.size);
    this.#o.metrics.failed.set(this.#failed.size);
  }

  #pump(): void {
    while (!this.#closed && this.#running < this.#o.concurrency && this.#waiting.length > 0) {
      const meta = this.#waiting.shift()!;
      this.#running++;
      void this.#upload(meta).finally(() => {
        this.#running--;
        this.#pump();
      });
    }
  }

  async #upload(meta: SpoolMeta): Promise<void> {
    const { spoolDir, logging, metrics } = this.#o;
    const artifact = meta.format === 'mp3' ? mp3Path(spoolDir, meta.id) : wavPath(spoolDir, meta.id);
    const contentType = meta.format === 'mp3' ? 'audio/mpeg' : 'audio/wav';
    const started = performance.now();
    const callLog = logging.forContext({ trace_id: meta.traceId, call_id: meta.callId }).child({ component: 'recording-upload' });
    let stored: StoredObject;
    let size: number;
    try {
      size = (await stat(artifact)).size;
      stored = await this.#o.store.put(artifact, meta.destination, { contentType, recordingId: meta.id });
      // Stored before announced: a restart from here on cleans up and never announces again.
      await writeMeta(spoolDir, { ...meta, state: 'stored', storedUri: stored.uri });
    } catch (error) {
      await this.#failedAttempt(meta, error, callLog);
      return;
    }
    meta.state = 'stored';
    meta.storedUri = stored.uri;
    metrics.uploadDuration.observe((performance.now() - started) / 1000);
    metrics.uploads.inc({ result: 'succeeded' });
    this.#known.delete(meta.id);
    this.#failed.delete(meta.id);
    this.#gauges();
    callLog.info(
      {
        event: 'RECORDING_STORED',
        attributes: {
          'recording.id': meta.id,
          'recording.uri': stored.uri,
          'recording.bytes': size,
          'recording.attempts': meta.attempts + 1,
          ...(stored.renamed ? { 'recording.requested': describeDestination(meta.destination) } : {}),
        },
      },
      stored.renamed ? 'recording stored under an alternate name: the one asked for holds another recording' : 'recording stored',
    );
    this.#o.onStored(meta, stored);
    await removeSpoolEntry(spoolDir, meta.id).catch((error: unknown) => {
      callLog.warn({ event: 'RECORDING_SPOOL_CLEANUP_FAILED', error, attributes: { 'recording.id': meta.id } }, 'stored recording left in the spool; the next start removes it');
    });
  }

  async #failedAttempt(meta: SpoolMeta, error: unknown, callLog: Logger): Promise<void> {
    const { metrics, permanentFailureAttempts: limit } = this.#o;
    const kind = classifyStoreFailure(error);
    const err = { message: (error as Error).message, name: (error as Error).name };
    const wasFailed = meta.state === 'failed';
    meta.attempts++;
    if (kind === 'permanent') meta.permanentFailures++;
    meta.lastError = `${err.name}: ${err.message}`.slice(0, 500);
    metrics.uploads.inc({ result: 'failed' });
    const attributes = { 'recording.id': meta.id, 'recording.destination': describeDestination(meta.destination), 'recording.attempts': meta.attempts, 'recording.failure': kind };
    if (kind === 'permanent' && limit > 0 && meta.permanentFailures >= limit) {
      meta.state = 'failed';
      await this.#persist(meta, callLog);
      this.#known.delete(meta.id);
      this.#failed.add(meta.id);
      this.#gauges();
      if (wasFailed) {
        callLog.warn({ event: 'RECORDING_UPLOAD_STILL_FAILED', error: err, attributes }, 'the store still refuses the recording; it stays in the spool as failed until the next start');
      } else {
        metrics.uploads.inc({ result: 'failed_permanently' });
        callLog.error(
          { event: 'RECORDING_UPLOAD_FAILED_PERMANENTLY', error: err, attributes },
          'the store refused the recording for good; it is kept in the spool as failed and tried again at the next start',
        );
      }
      return;
    }
    if (wasFailed) {
      // No refusal this time, only no answer: back to ordinary retries.
      meta.state = 'finalized';
      this.#failed.delete(meta.id);
      this.#gauges();
    }
    await this.#persist(meta, callLog);
    const delay = Math.min(this.#o.maxBackoffMs, 500 * 2 ** Math.min(meta.attempts, 16)) * (0.75 + Math.random() * 0.5);
    callLog.warn({ event: 'RECORDING_UPLOAD_FAILED', error: err, attributes: { ...attributes, 'retry.in_ms': Math.round(delay) } }, 'recording upload failed; will retry');
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (this.#closed) return;
      this.#waiting.push(meta);
      this.#pump();
    }, delay);
    this.#timers.add(t);
  }

  /** The attempt counts live in the spool; a disk that refuses them costs only the count. */
  async #persist(meta: SpoolMeta, callLog: Logger): Promise<void> {
    try {
      await writeMeta(this.#o.spoolDir, meta);
    } catch (error) {
      callLog.warn({ event: 'RECORDING_META_WRITE_FAILED', error, attributes: { 'recording.id': meta.id } }, 'could not record the upload attempt in the spool');
    }
  }
}
