import { test } from 'node:test';
import assert from 'node:assert/strict';
import { candidateNames } from '../../../src/storage/object-names.ts';

const id = '1a2b3c4d-0000-4000-8000-000000000001';

test('the name asked for comes first, then the short id, then the whole id, before the extension', () => {
  assert.deepEqual(candidateNames('calls/2026/12/01/abc@host.wav', id), [
    'calls/2026/12/01/abc@host.wav',
    'calls/2026/12/01/abc@host-1a2b3c4d.wav',
    `calls/2026/12/01/abc@host-${id}.wav`,
  ]);
  assert.deepEqual(candidateNames('/var/recs/x.mp3', id).slice(1, 2), ['/var/recs/x-1a2b3c4d.mp3']);
});

test('a dot in a folder or at the start of a name is not an extension', () => {
  assert.deepEqual(candidateNames('a.b/name', id).slice(1, 2), ['a.b/name-1a2b3c4d']);
  assert.deepEqual(candidateNames('dir/.hidden', id).slice(1, 2), ['dir/.hidden-1a2b3c4d']);
});

test('every candidate is distinct, so a retry never lands on the name that refused it', () => {
  assert.equal(new Set(candidateNames('k.wav', id)).size, 3);
  assert.deepEqual(candidateNames('k.wav', 'short'), ['k.wav', 'k-short.wav']);
});
