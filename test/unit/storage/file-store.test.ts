import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FileStore } from '../../../src/storage/file-store.ts';
import { classifyStoreFailure } from '../../../src/storage/store-error.ts';

const ID_A = 'aaaaaaaa-0000-4000-8000-000000000001';
const ID_B = 'bbbbbbbb-0000-4000-8000-000000000002';

function setup(): { dir: string; local: (name: string, body: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'file-store-'));
  mkdirSync(join(dir, 'spool'));
  return { dir, local: (name, body) => (writeFileSync(join(dir, 'spool', name), body), join(dir, 'spool', name)) };
}

test('a name already taken is never replaced: the recording takes <name>-<id8>', async () => {
  const { dir, local } = setup();
  const store = new FileStore();
  const path = join(dir, 'out', 'call.wav');
  const first = await store.put(local('a.wav', 'first'), { kind: 'file', path }, { contentType: 'audio/wav', recordingId: ID_A });
  assert.deepEqual(first, { uri: pathToFileURL(path).href, publicUrl: pathToFileURL(path).href, renamed: false });
  const second = await store.put(local('b.wav', 'second'), { kind: 'file', path }, { contentType: 'audio/wav', recordingId: ID_B });
  const alternate = join(dir, 'out', 'call-bbbbbbbb.wav');
  assert.equal(second.uri, pathToFileURL(alternate).href);
  assert.equal(second.renamed, true);
  assert.equal(readFileSync(path, 'utf8'), 'first');
  assert.equal(readFileSync(alternate, 'utf8'), 'second');
  assert.deepEqual(readdirSync(join(dir, 'out')).sort(), ['call-bbbbbbbb.wav', 'call.wav'], 'no temporary file is left');
});

test('when every name is taken the store refuses for good, and writes nothing', async () => {
  const { dir, local } = setup();
  const store = new FileStore();
  const path = join(dir, 'call.wav');
  for (const name of ['call.wav', 'call-bbbbbbbb.wav', `call-${ID_B}.wav`]) writeFileSync(join(dir, name), 'other');
  await assert.rejects(store.put(local('b.wav', 'mine'), { kind: 'file', path }, { contentType: 'audio/wav', recordingId: ID_B }), (err: unknown) => {
    assert.equal(classifyStoreFailure(err), 'permanent');
    return true;
  });
  assert.equal(readdirSync(dir).filter((f) => f.startsWith('.')).length, 0);
});

test('an attempt that died after linking the name is recognised: the same recording is not stored twice', async () => {
  const { dir, local } = setup();
  const path = join(dir, 'call.wav');
  // What that attempt left: its temporary file, already linked to the name.
  const tmp = join(dir, `.call.wav.${ID_A}.partial`);
  writeFileSync(tmp, 'mine');
  linkSync(tmp, path);
  const stored = await new FileStore().put(local('a.wav', 'mine'), { kind: 'file', path }, { contentType: 'audio/wav', recordingId: ID_A });
  assert.equal(stored.uri, pathToFileURL(path).href);
  assert.equal(stored.renamed, false);
  assert.deepEqual(readdirSync(dir).sort(), ['call.wav', 'spool']);
});

test('a leftover temporary file shared with another name is removed, never written through', async () => {
  const { dir, local } = setup();
  const other = join(dir, 'other.wav');
  writeFileSync(other, 'keep me');
  linkSync(other, join(dir, `.call.wav.${ID_A}.partial`));
  await new FileStore().put(local('a.wav', 'mine'), { kind: 'file', path: join(dir, 'call.wav') }, { contentType: 'audio/wav', recordingId: ID_A });
  assert.equal(readFileSync(other, 'utf8'), 'keep me');
  assert.equal(readFileSync(join(dir, 'call.wav'), 'utf8'), 'mine');
});

test('a destination the service may not write is a permanent failure', { skip: process.getuid?.() === 0 ? 'root writes anywhere' : false }, async () => {
  const { dir, local } = setup();
  mkdirSync(join(dir, 'ro'));
  chmodSync(join(dir, 'ro'), 0o500);
  await assert.rejects(new FileStore().put(local('a.wav', 'x'), { kind: 'file', path: join(dir, 'ro', 'call.wav') }, { contentType: 'audio/wav', recordingId: ID_A }), (err: unknown) => {
    assert.equal(classifyStoreFailure(err), 'permanent');
    return true;
  });
  assert.equal(existsSync(join(dir, 'ro', 'call.wav')), false);
});

test('a directory where the file should go is a permanent failure', async () => {
  const { dir, local } = setup();
  writeFileSync(join(dir, 'blocker'), 'a file, not a directory');
  await assert.rejects(new FileStore().put(local('a.wav', 'x'), { kind: 'file', path: join(dir, 'blocker', 'call.wav') }, { contentType: 'audio/wav', recordingId: ID_A }), (err: unknown) => {
    assert.equal(classifyStoreFailure(err), 'permanent');
    return true;
  });
});
