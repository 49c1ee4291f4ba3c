import { stat } from 'node:fs/promises';
import type { Logger, Logging } from '../logging/logger.ts';
import type { RecordingStore, StoredObject } from '../storage/store.ts';
import type { RecordingMetrics } from './metrics.ts';
import { mp3Path, removeSpoolEntry, wavPath, writeMeta, type SpoolMeta } from './spool-meta.ts';
import { describeDestination } from './target.ts';

export interface UploadQueueOptions {
  store: RecordingStore;
  spoolDir: string;
  concurrency: number;
  maxBackoffMs: number;
  logging: Logging;
  metrics: RecordingMetrics;
  /** Called once per recording, after the spool says it is stored: it is never announced twice. */
  onStored: (meta: SpoolMeta, stored: StoredObject) => void;
}

/**
 * Finished recordings on their way to storage, off the media path. A failed upload is
 * retried with capped exponential backoff for as long as it takes; the spool files are
 * removed only after the store confirmed the object. A retry is safe: a store never
 * replaces an object, and finds one this recording already wrote.
 */
export class UploadQueue {
  readonly #o: UploadQueueOptions;
  readonly #waiting: SpoolMeta[] = [];
  readonly #known = new Set<string>();
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

  enqueue(meta: SpoolMeta): void {
    if (this.#closed || this.#known.has(meta.id)) return;
    this.#known.add(meta.id);
    this.#o.metrics.uploadsPending.set(this.#known.size);
    this.#waiting.push(meta);
    this.#pump();
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
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
      this.#retry(meta, error, callLog);
      return;
    }
    meta.state = 'stored';
    meta.storedUri = stored.uri;
    metrics.uploadDuration.observe((performance.now() - started) / 1000);
    metrics.uploads.inc({ result: 'succeeded' });
    this.#known.delete(meta.id);
    metrics.uploadsPending.set(this.#known.size);
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

  #retry(meta: SpoolMeta, error: unknown, callLog: Logger): void {
    const { metrics } = this.#o;
    meta.attempts++;
    metrics.uploads.inc({ result: 'failed' });
    const delay = Math.min(this.#o.maxBackoffMs, 500 * 2 ** Math.min(meta.attempts, 16)) * (0.75 + Math.random() * 0.5);
    callLog.warn(
      { event: 'RECORDING_UPLOAD_FAILED', error: { message: (error as Error).message, name: (error as Error).name }, attributes: { 'recording.destination': describeDestination(meta.destination), 'recording.attempts': meta.attempts, 'retry.in_ms': Math.round(delay) } },
      'recording upload failed; will retry',
    );
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (this.#closed) return;
      this.#waiting.push(meta);
      this.#pump();
    }, delay);
    this.#timers.add(t);
  }
}
