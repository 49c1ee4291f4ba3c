import { randomUUID } from 'node:crypto';
import { access, mkdir, rename, rm, stat } from 'node:fs/promises';
import { MediaError, invalidArgument } from '../errors/media-error.ts';
import type { Logger, Logging } from '../logging/logger.ts';
import type { StoredObject } from '../storage/store.ts';
import { CALL_RATE, FRAME_SAMPLES } from '../sessions/call-session.ts';
import type { TapHost } from '../sessions/media-host.ts';
import type { RecordingMetrics } from './metrics.ts';
import { CallRecorder } from './recorder.ts';
import { mp3Path, readAllMeta, removeSpoolEntry, wavPath, writeMeta, type SpoolMeta } from './spool-meta.ts';
import { describeDestination, parseRecordingUri, RECORDING_RATES, type ChannelLayout, type RecordingFormat } from './target.ts';
import { Mp3Transcoder } from './transcode.ts';
import type { UploadQueue } from './upload-queue.ts';
import { repairWavHeader, WavSpool } from './wav-spool.ts';

export interface StartRecordingRequest {
  outputUri: string;
  sampleRate?: number | undefined;
  format?: string | undefined;
  layout?: string | undefined;
  callId: string;
  traceId: string;
  tenantId: string;
}

/**
 * A call's recording from the moment StartRecording takes the call: starting (the spool is
 * being made), recording (tapped to the call), stopping (finishing the spool).
 */
interface Active {
  session: TapHost;
  meta: SpoolMeta;
  phase: 'starting' | 'recording' | 'stopping';
  /** Settles when the start is over: true once recording, false if it came to nothing. */
  started: Promise<boolean>;
  recorder?: CallRecorder;
  finishing?: Promise<void>;
}

const TRANSCODE_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * Call recordings: written to a local spool while the call runs, finalized on StopRecording,
 * ReleasePort or the inactivity timeout, then handed to the upload queue. At start-up it
 * resumes whatever a previous process left in the spool.
 */
export class RecordingManager {
  readonly #active = new Map<TapHost, Active>();
  readonly #spoolDir: string;
  readonly #fileRoot: string;
  readonly #uploads: UploadQueue;
  readonly #metrics: RecordingMetrics;
  readonly #log: Logger;
  readonly #logging: Logging;
  readonly #mp3: Mp3Transcoder;

  constructor(opts: { spoolDir: string; fileRoot: string; uploads: UploadQueue; metrics: RecordingMetrics; logging: Logging; transcodeConcurrency: number }) {
    this.#mp3 = new Mp3Transcoder({ concurrency: opts.transcodeConcurrency, timeoutMs: TRANSCODE_TIMEOUT_MS });
    this.#spoolDir = opts.spoolDir;
    this.#fileRoot = opts.fileRoot;
    this.#uploads = opts.uploads;
    this.#metrics = opts.metrics;
    this.#logging = opts.logging;
    this.#log = opts.logging.process.child({ component: 'recording' });
  }

  get activeCount(): number {
    return this.#active.size;
  }

  /** The recording running on a call, for its snapshot. */
  activeOn(session: TapHost): { id: string } | undefined {
    const entry = this.#active.get(session);
    return entry && entry.phase === 'recording' ? { id: entry.meta.id } : undefined;
  }

  /**
   * Finds recordings of a previous process: those of calls carried on (`continuing`: by
   * recording id) go on being written; the others are repaired, finalized and queued.
   */
  async recover(continuing: ReadonlyMap<string, TapHost> = new Map()): Promise<number> {
    await mkdir(this.#spoolDir, { recursive: true });
    const { metas, broken } = await readAllMeta(this.#spoolDir);
    for (const name of broken) this.#log.error({ event: 'RECORDING_META_UNREADABLE', attributes: { 'spool.file': name } }, 'unreadable recording metadata left in the spool');
    for (const meta of metas) {
      const callLog = this.#logging.forContext({ trace_id: meta.traceId, call_id: meta.callId });
      try {
        if (meta.state === 'stored') {
          // Stored and announced; the process ended before it cleaned up. Never again.
          await removeSpoolEntry(this.#spoolDir, meta.id);
          callLog.info({ event: 'RECORDING_SPOOL_CLEANED', attributes: { 'recording.id': meta.id, 'recording.uri': meta.storedUri ?? '' } }, 'stored recording removed from the spool');
          continue;
        }
        const session = meta.state === 'recording' ? continuing.get(meta.id) : undefined;
        if (session && !session.closed && (await exists(wavPath(this.#spoolDir, meta.id)))) {
          await this.#continue(session, meta);
          continue;
        }
        if (meta.state === 'recording') {
          if (!(await exists(wavPath(this.#spoolDir, meta.id)))) {
            // The process ended between writing the metadata and creating the file: nothing was recorded.
            await removeSpoolEntry(this.#spoolDir, meta.id);
            callLog.warn({ event: 'RECORDING_RECOVERY_EMPTY', attributes: { 'recording.id': meta.id } }, 'recording interrupted before its file existed: nothing to recover');
            continue;
          }
          const bytes = await repairWavHeader(wavPath(this.#spoolDir, meta.id), meta.sampleRate, meta.channels);
          callLog.warn(
            { event: 'RECORDING_RECOVERED', attributes: { 'recording.id': meta.id, 'recording.bytes': bytes, 'recording.destination': describeDestination(meta.destination) } },
            'recording interrupted by a restart: header repaired, uploading',
          );
        }
        this.#metrics.recovered.inc();
        // The store refused it for good last time: one attempt now, in case someone fixed the store.
        if (meta.state === 'failed') {
          this.#uploads.enqueue(meta);
          continue;
        }
        // Encoding and upload go on in the background: start-up does not wait for them.
        this.#finalize(meta).catch((error: unknown) => {
          this.#log.error({ event: 'RECORDING_RECOVERY_FAILED', error, attributes: { 'recording.id': meta.id } }, 'could not resume a recording from the spool');
        });
      } catch (error) {
        this.#log.error({ event: 'RECORDING_RECOVERY_FAILED', error, attributes: { 'recording.id': meta.id } }, 'could not resume a recording from the spool');
      }
    }
    return metas.length;
  }

  /** Goes on recording a call carried on after a crash, into the file the old process wrote. */
  async #continue(session: TapHost, meta: SpoolMeta): Promise<void> {
    const elapsedMs = Date.now() - Date.parse(meta.startedAt);
    const path = wavPath(this.#spoolDir, meta.id);
    const bytesPerMs = (meta.sampleRate * meta.channels * 2) / 1000;
    const onDisk = Math.max(0, (await stat(path)).size - 44);
    const spool = await WavSpool.resume(path, meta.sampleRate, meta.channels, Math.max(0, elapsedMs - onDisk / bytesPerMs));
    let settle!: (recording: boolean) => void;
    const entry: Active = { session, meta, phase: 'recording', started: new Promise<boolean>((r) => (settle = r)) };
    entry.recorder = new CallRecorder({
      spool,
      layout: meta.channels === 2 ? 'stereo' : 'mono',
      callRate: CALL_RATE,
      frameSamples: FRAME_SAMPLES,
      onCallClosed: () => void this.#finish(entry),
    });
    this.#active.set(session, entry);
    this.#metrics.active.set(this.#active.size);
    session.addTap(entry.recorder);
    settle(true);
    this.#metrics.recovered.inc();
    session.log.warn(
      { event: 'RECORDING_CONTINUED', attributes: { 'recording.id': meta.id, 'recording.bytes': onDisk, 'recording.gap_ms': Math.round(Math.max(0, elapsedMs - onDisk / bytesPerMs)) } },
      'recording goes on after a restart; the time nobody wrote is silence',
    );
  }

  async start(session: TapHost, req: StartRecordingRequest): Promise<SpoolMeta> {
    const running = this.#active.get(session);
    if (running) {
      throw new MediaError(
        'already_exists',
        running.phase === 'stopping'
          ? `the recording on the call on port ${session.port} is still being stopped; start again once StopRecording has answered`
          : `a recording is already running on the call on port ${session.port}`,
      );
    }
    if (session.closed) throw new MediaError('not_found', `the call on port ${session.port} ended`);
    const format = (req.format || 'wav').toLowerCase();
    if (format !== 'wav' && format !== 'mp3') throw invalidArgument(`format must be wav or mp3, got ${JSON.stringify(req.format)}`);
    const sampleRate = req.sampleRate || CALL_RATE;
    if (!(RECORDING_RATES as readonly number[]).includes(sampleRate)) throw invalidArgument(`sample_rate must be one of ${RECORDING_RATES.join(', ')}, got ${sampleRate}`);
    const layout = (req.layout || 'stereo').toLowerCase();
    if (layout !== 'stereo' && layout !== 'mono') throw invalidArgument(`channel_layout must be stereo or mono, got ${JSON.stringify(req.layout)}`);
    const callId = req.callId || session.callId;
    const destination = parseRecordingUri(req.outputUri, { fileRoot: this.#fileRoot, callId, format: format as RecordingFormat });
    const channels = layout === 'stereo' ? 2 : 1;
    const meta: SpoolMeta = {
      id: randomUUID(),
      callId,
      traceId: req.traceId || session.traceId,
      tenantId: req.tenantId,
      destination,
      format: format as RecordingFormat,
      sampleRate,
      channels,
      state: 'recording',
      startedAt: new Date().toISOString(),
      attempts: 0,
      permanentFailures: 0,
    };
    let settle!: (recording: boolean) => void;
    const entry: Active = { session, meta, phase: 'starting', started: new Promise<boolean>((r) => (settle = r)) };
    // Taken before the first await: a second StartRecording of the call is refused, never run beside this one.
    this.#active.set(session, entry);
    this.#metrics.active.set(this.#active.size);
    let spool: WavSpool;
    try {
      await mkdir(this.#spoolDir, { recursive: true });
      await writeMeta(this.#spoolDir, meta);
      spool = await WavSpool.create(wavPath(this.#spoolDir, meta.id), sampleRate, channels);
    } catch (error) {
      await this.#abandon(entry, settle);
      throw error;
    }
    if (session.closed) {
      // The call ended while the spool was being made: the recording never started.
      await spool.finish().catch(() => undefined);
      await this.#abandon(entry, settle);
      throw new MediaError('not_found', `the call on port ${session.port} ended before the recording started`);
    }
    const recorder = new CallRecorder({
      spool,
      layout: layout as ChannelLayout,
      callRate: CALL_RATE,
      frameSamples: FRAME_SAMPLES,
      onCallClosed: () => void this.#finish(entry),
    });
    entry.recorder = recorder;
    entry.phase = 'recording';
    session.addTap(recorder);
    session.log.info(
      { event: 'RECORDING_STARTED', attributes: { 'recording.id': meta.id, 'recording.destination': describeDestination(destination), 'recording.format': format, 'recording.sample_rate': sampleRate, 'recording.channels': channels } },
      'recording started',
    );
    settle(true);
    return meta;
  }

  /**
   * Ends the call's recording: answers once the audio is complete on disk. A stop that comes
   * while the recording is starting waits for it and ends it; stops at the same time share
   * one finish. MP3 encoding and the upload follow in the background; a restart in between
   * resumes them from the spool.
   */
  async stop(session: TapHost): Promise<boolean> {
    const entry = this.#active.get(session);
    if (!entry || !(await entry.started)) return false;
    await this.#finish(entry);
    return true;
  }

  /** Waits for every recording to be finalized, those still starting included (shutdown). */
  async drain(): Promise<void> {
    await Promise.all(
      [...this.#active.values()].map(async (entry) => {
        if (await entry.started) await this.#finish(entry);
      }),
    );
  }

  #finish(entry: Active): Promise<void> {
    entry.finishing ??= this.#finishNow(entry);
    return entry.finishing;
  }

  async #finishNow(entry: Active): Promise<void> {
    const { session, recorder } = entry;
    if (!recorder) return;
    entry.phase = 'stopping';
    recorder.stop();
    session.removeTap(recorder);
    try {
      await recorder.spool.finish();
      this.#metrics.bytesWritten.inc(recorder.spool.bytesWritten);
      if (recorder.spool.droppedBytes > 0) this.#metrics.droppedBytes.inc(recorder.spool.droppedBytes);
      session.log.info(
        {
          event: 'RECORDING_FINALIZED',
          attributes: {
            'recording.id': entry.meta.id,
            'recording.bytes': recorder.spool.bytesWritten,
            // Caller frames that came later than the pairing delay (each moved the caller a frame later) or were dropped for clock drift.
            'recording.caller_late_slots': recorder.pairing.late,
            'recording.caller_dropped_frames': recorder.pairing.dropped,
          },
        },
        'recording complete; queued for storage',
      );
      this.#finalize(entry.meta).catch((error: unknown) => {
        session.log.error({ event: 'RECORDING_FINALIZE_FAILED', error }, 'could not queue the recording; it stays in the spool for the next start');
      });
    } catch (error) {
      // The spool and its metadata stay: the next start-up resumes them.
      session.log.error({ event: 'RECORDING_FINALIZE_FAILED', error }, 'could not finish the recording file; it stays in the spool');
    } finally {
      this.#release(entry);
    }
  }

  /** A start that failed or lost its call leaves nothing behind, in the spool or in the map. */
  async #abandon(entry: Active, settle: (recording: boolean) => void): Promise<void> {
    this.#release(entry);
    settle(false);
    await removeSpoolEntry(this.#spoolDir, entry.meta.id).catch((error: unknown) => {
      entry.session.log.warn({ event: 'RECORDING_SPOOL_CLEANUP_FAILED', error, attributes: { 'recording.id': entry.meta.id } }, 'an abandoned recording is left in the spool');
    });
  }

  #release(entry: Active): void {
    if (this.#active.get(entry.session) === entry) this.#active.delete(entry.session);
    this.#metrics.active.set(this.#active.size);
  }

  async #finalize(meta: SpoolMeta): Promise<void> {
    const wav = wavPath(this.#spoolDir, meta.id);
    const mp3 = mp3Path(this.#spoolDir, meta.id);
    if (meta.format === 'mp3' && !(await exists(mp3))) {
      await this.#mp3.transcode(wav, `${mp3}.tmp.mp3`, { sampleRate: meta.sampleRate, channels: meta.channels });
      await rename(`${mp3}.tmp.mp3`, mp3);
    }
    meta.state = 'finalized';
    meta.finishedAt ??= new Date().toISOString();
    await writeMeta(this.#spoolDir, meta);
    if (meta.format === 'mp3') await rm(wav, { force: true });
    this.#uploads.enqueue(meta);
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

export type { StoredObject };
