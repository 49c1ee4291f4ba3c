import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Config } from '../config/schema.ts';
import type { RecordingDestination } from '../recording/target.ts';
import type { RecordingStore, StoredObject } from './store.ts';

const PART_BYTES = 8 * 1024 * 1024;

export function createS3Client(c: Config['bucket']): S3Client {
  return new S3Client({
    region: c.region,
    forcePathStyle: c.force_path_style,
    // Retries are the uploader's (with its own backoff across restarts); one try here.
    maxAttempts: 1,
    ...(c.endpoint_url ? { endpoint: c.endpoint_url } : {}),
    ...(c.access_key_id ? { credentials: { accessKeyId: c.access_key_id, secretAccessKey: c.secret_access_key } } : {}),
  });
}

/** Uploads through lib-storage: one PUT for small files, multipart for large ones. */
export class S3Store implements RecordingStore {
  readonly #client: S3Client;
  readonly #config: Config['bucket'];
  readonly #local: RecordingStore;

  constructor(opts: { client: S3Client; config: Config['bucket']; local: RecordingStore }) {
    this.#client = opts.client;
    this.#config = opts.config;
    this.#local = opts.local;
  }

  async put(localPath: string, dest: RecordingDestination, contentType: string): Promise<StoredObject> {
    if (dest.kind === 'file') return this.#local.put(localPath, dest, contentType);
    const { size } = await stat(localPath);
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: dest.bucket, Key: dest.key, Body: createReadStream(localPath), ContentType: contentType, ContentLength: size },
      partSize: PART_BYTES,
      queueSize: 2,
      leavePartsOnError: false,
    });
    await upload.done();
    return { uri: `s3://${dest.bucket}/${dest.key}`, publicUrl: this.#publicUrl(dest.bucket, dest.key) };
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
