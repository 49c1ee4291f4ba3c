import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyStoreFailure, StoreError } from '../../../src/storage/store-error.ts';

/** An error shaped as the AWS SDK throws them: the S3 code as its name, the HTTP status in $metadata. */
const s3Error = (name: string, status?: number): Error => Object.assign(new Error(name), { name, ...(status ? { $metadata: { httpStatusCode: status } } : {}) });
const fsError = (code: string): Error => Object.assign(new Error(code), { code });

test('a refusal no retry cures is permanent', () => {
  for (const [name, status] of [
    ['NoSuchBucket', 404],
    ['AccessDenied', 403],
    ['InvalidAccessKeyId', 403],
    ['SignatureDoesNotMatch', 403],
    ['InvalidBucketName', 400],
    ['PermanentRedirect', 301],
    ['SomethingNew', 400],
    ['Forbidden', 403],
  ] as const) {
    assert.equal(classifyStoreFailure(s3Error(name, status)), 'permanent', name);
  }
  for (const code of ['EACCES', 'EROFS', 'ENOTDIR', 'ENOENT']) assert.equal(classifyStoreFailure(fsError(code)), 'permanent', code);
  assert.equal(classifyStoreFailure(new StoreError('name_taken', 'taken', { permanent: true })), 'permanent');
});

test('no answer, a slow-down, a timeout or a 5xx is transient', () => {
  for (const [name, status] of [
    ['RequestTimeout', 400],
    ['SlowDown', 503],
    ['InternalError', 500],
    ['ServiceUnavailable', 503],
    ['RequestTimeTooSkewed', 403],
    ['ExpiredToken', 400],
    ['ConditionalRequestConflict', 409],
    ['Unknown408', 408],
    ['TooManyRequests', 429],
    ['TimeoutError', undefined],
  ] as const) {
    assert.equal(classifyStoreFailure(s3Error(name, status)), 'transient', name);
  }
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOSPC', 'EIO']) assert.equal(classifyStoreFailure(fsError(code)), 'transient', code);
  assert.equal(classifyStoreFailure(new Error('what')), 'transient');
  assert.equal(classifyStoreFailure('a string'), 'transient');
  assert.equal(classifyStoreFailure(null), 'transient');
});
