import type { S3Client } from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Config } from '../config/schema.ts';
import type { RecordingDestination } from '../recording/target.ts';
import { candidateNames } from './object-names.ts';
import { StoreError } from './store-error.ts';
import type { PutOptions, RecordingStore, StoredObject } from './store.ts';

const PART_BYTES = 8 * 1024 * 1024;
/** User metadata naming the recording an object holds (`x-amz-meta-recording-id`). */
const RECORDING_ID = 'recording-id';

export interface S3Timeouts {
  /** A TCP/TLS connection not made in this time fails the attempt. */
  connectMs: number;
  /** A socket with nothing sent or received for this long fails the attempt. */
  idleMs: number;
  /** One request (a single PUT, or one 8 MiB part) taking longer fails: about 28 KiB/s at worst. */
  requestMs: number;
}

/** A hung or unreachable endpoint fails the attempt, which the upload queue retries: it never holds the queue. */
export const S3_TIMEOUTS: S3Timeouts = { connectMs: 5_000, idleMs: 30_000, requestMs: 300_000 };

/**
 * The AWS SDK is some 12 MB of RSS: loaded when a recording first goes to S3, not by a service
 * that never uploads (file:// recordings, or none).
 */
type Sdk = { s3: typeof import('@aws-sdk/client-s3'); storage: typeof import('@aws-sdk/lib-storage') };
let sdk: Promise<Sdk> | null = null;
const loadSdk = (): Promise<Sdk> => (sdk ??= Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(([s3, storage]) => ({ s3, storage })));

export async function createS3Client(c: Config['bucket'], timeouts: S3Timeouts = S3_TIMEOUTS): Promise<S3Client> {
  const { s3 } = await loadSdk();
  return new s3.S3Client({
    region: c.region,
    forcePathStyle: c.force_path_style,
    // Retries are the uploader's (with its own backoff across restarts); one try here.
    maxAttempts: 1,
    requestHandler: { connectionTimeout: timeouts.connectMs, socketTimeout: timeouts.idleMs, requestTimeout: timeouts.requestMs, throwOnRequestTimeout: true },
    ...(c.endpoint_url ? { endpoint: c.endpoint_url } : {}),
    ...(c.access_key_id ? { credentials: { accessKeyId: c.access_key_id, secretAccessKey: c.secret_access_key } } : {}),
  });
}

type Holder = 'free' | 'this' | 'other' | 'unknown';

/**
 * Uploads through lib-storage: one PUT for small files, multipart for large ones. Each write
 * is conditional (`If-None-Match: *`), so S3 itself refuses to replace an object; a HEAD
 * first finds an object this recording already wrote (its `recording-id` metadata), and
 * covers servers that ignore the condition.
 */
export class S3Store implements RecordingStore {
  #client: Promise<S3Client> | null = null;
  readonly #config: Config['bucket'];
  readonly #local: RecordingStore;
  readonly #timeouts: S3Timeouts;

  constructor(opts: { config: Config['bucket']; local: RecordingStore; timeouts?: S3Timeouts }) {
    this.#config = opts.config;
    this.#local = opts.local;
    this.#timeouts = opts.timeouts ?? S3_TIMEOUTS;
  }

  #s3(): Promise<S3Client> {
    return (this.#client ??= createS3Client(this.#config, this.#timeouts));
  }

  /** Closes the client's connections, if one was ever made. */
  destroy(): void {
    void this.#client?.then((c) => c.destroy());
  }

  async put(localPath: string, dest: RecordingDestination, opts: PutOptions): Promise<StoredObject> {
    if (dest.kind === 'file') return this.#local.put(localPath, dest, opts);
    const { size } = await stat(localPath);
    for (const key of candidateNames(dest.key, opts.recordingId)) {
      const before = await this.#holder(dest.bucket, key, opts.recordingId);
      if (before === 'this') return this.#stored(dest.bucket, key, key !== dest.key);
      if (before === 'other') continue;
      try {
        await this.#upload(localPath, size, dest.bucket, key, opts);
        return this.#stored(dest.bucket, key, key !== dest.key);
      } catch (err) {
        if (!isPreconditionFailed(err)) throw err;
        // Taken since the HEAD, or by this recording's own earlier attempt whose answer was lost.
        if ((await this.#holder(dest.bucket, key, opts.recordingId)) === 'this') return this.#stored(dest.bucket, key, key !== dest.key);
      }
    }
    throw new StoreError('name_taken', `every name for the recording at s3://${dest.bucket}/${dest.key} is taken`, { permanent: true });
  }

  async #upload(localPath: string, size: number, bucket: string, key: string, opts: PutOptions): Promise<void> {
    const [client, { storage }] = await Promise.all([this.#s3(), loadSdk()]);
    const upload = new storage.Upload({
      client,
      params: {
        Bucket: bucket,
        Key: key,
        Body: createReadStream(localPath),
        ContentType: opts.contentType,
        ContentLength: size,
        IfNoneMatch: '*',
        Metadata: { [RECORDING_ID]: opts.recordingId },
      },
      partSize: PART_BYTES,
      queueSize: 2,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  /**
   * Who holds the key. A 403 on HEAD is what a write-only policy (no s3:GetObject) answers:
   * the conditional PUT still protects the key, only an earlier attempt cannot be recognised.
   */
  async #holder(bucket: string, key: string, recordingId: string): Promise<Holder> {
    try {
      const [client, { s3 }] = await Promise.all([this.#s3(), loadSdk()]);
      const head = await client.send(new s3.HeadObjectCommand({ Bucket: bucket, Key: key }));
      return head.Metadata?.[RECORDING_ID] === recordingId ? 'this' : 'other';
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404) return 'free';
      if (status === 403) return 'unknown';
      throw err;
    }
  }

  #stored(bucket: string, key: string, renamed: boolean): StoredObject {
    return { uri: `s3://${bucket}/${key}`, publicUrl: this.#publicUrl(bucket, key), renamed };
  }

  #publicUrl(bucket: string, key: string): string {
    const path = key.split('/').map(encodeURIComponent).join('/');
    const c = this.#config;
    if (c.endpoint_url) {
      const base = c.endpoint_url.replace(/\/+$/, '');
      if (c.force_path_style) return `${base}/${bucket}/${path}`;
      const u = new URL(base);
      return `${u.protocol}//${bucket}.${u.host}/${path}`;
    }
    return `https://${bucket}.s3.${c.region}.amazonaws.com/${path}`;
  }
}

function isPreconditionFailed(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.$metadata?.httpStatusCode === 412 || e.name === 'PreconditionFailed';
}
