/**
 * Why a store could not take a recording. `permanent` failures will not heal by retrying
 * (the bucket is missing, the credentials are refused, every name is taken); the upload
 * queue gives up on them after a few attempts and keeps the recording in the spool.
 */
export type StoreErrorCode = 'name_taken' | 'wrong_store';

export class StoreError extends Error {
  override name = 'StoreError';
  readonly code: StoreErrorCode;
  readonly permanent: boolean;

  constructor(code: StoreErrorCode, message: string, opts: { permanent: boolean }) {
    super(message);
    this.code = code;
    this.permanent = opts.permanent;
  }
}

export type FailureKind = 'permanent' | 'transient';

/** S3 codes that a retry can cure although they come with a 4xx status. */
const TRANSIENT_S3 = new Set([
  'RequestTimeout',
  // The SDK corrects its clock offset from the answer; the next attempt is signed right.
  'RequestTimeTooSkewed',
  'ExpiredToken',
  'TokenRefreshRequired',
  'ConditionalRequestConflict',
  'OperationAborted',
  'NoSuchUpload',
  'BadDigest',
  'IncompleteBody',
  'XAmzContentSHA256Mismatch',
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
]);

/** S3 codes that no retry cures, whatever status carried them (a 301 included). */
const PERMANENT_S3 = new Set([
  'NoSuchBucket',
  'AccessDenied',
  'AllAccessDisabled',
  'AccountProblem',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidBucketName',
  'InvalidBucketState',
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
]);

/**
 * File system errors of a destination (or a spool file) that stay until someone acts.
 * EEXIST reaches here only from making the directory: a file stands where it should be.
 */
const PERMANENT_FS = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENAMETOOLONG', 'ENOENT', 'ELOOP', 'EINVAL']);

/**
 * Permanent or transient. Anything not known to be permanent is transient: a store that
 * is down, slow or unreachable answers nothing, and those must be retried for as long as
 * it takes.
 */
export function classifyStoreFailure(error: unknown): FailureKind {
  if (error instanceof StoreError) return error.permanent ? 'permanent' : 'transient';
  if (typeof error !== 'object' || error === null) return 'transient';
  const e = error as { name?: unknown; Code?: unknown; code?: unknown; $metadata?: { httpStatusCode?: unknown } };
  const name = typeof e.Code === 'string' ? e.Code : typeof e.name === 'string' ? e.name : '';
  if (TRANSIENT_S3.has(name)) return 'transient';
  if (PERMANENT_S3.has(name)) return 'permanent';
  if (typeof e.code === 'string' && PERMANENT_FS.has(e.code)) return 'permanent';
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && status >= 400 && status < 500 && status !== 408 && status !== 429) return 'permanent';
  return 'transient';
}
