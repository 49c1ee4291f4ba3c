import type { RecordingDestination } from '../recording/target.ts';

export interface StoredObject {
  /** `s3://bucket/key` or `file:///path`. */
  uri: string;
  /** Where a person or another service can fetch it (HTTP(S) for S3). */
  publicUrl: string;
}

/** Puts a finished local file at its destination; resolves only once the store confirmed it. */
export interface RecordingStore {
  put(localPath: string, dest: RecordingDestination, contentType: string): Promise<StoredObject>;
}
