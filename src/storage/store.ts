import type { RecordingDestination } from '../recording/target.ts';

export interface StoredObject {
  /** `s3://bucket/key` or `file:///path`: where it landed, which may be an alternate name. */
  uri: string;
  /** Where a person or another service can fetch it (HTTP(S) for S3). */
  publicUrl: string;
  /** The name asked for was another recording's, so this one took an alternate. */
  renamed: boolean;
}

export interface PutOptions {
  contentType: string;
  /** Marks the object as this recording's, so a retry after a lost answer finds it done. */
  recordingId: string;
}

/**
 * Puts a finished local file at its destination; resolves only once the store confirmed it.
 * Never replaces an object: a name another recording holds moves this one to an alternate
 * name (see candidateNames), and an object this recording already wrote counts as done.
 */
export interface RecordingStore {
  put(localPath: string, dest: RecordingDestination, opts: PutOptions): Promise<StoredObject>;
}
