import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLogging } from '../../../src/logging/logger.ts';
import { duplicateKey, topLevelKeys } from '../../helpers/json-line.ts';

const SRC = fileURLToPath(new URL('../../../src/logging/logger.ts', import.meta.url));

test('the duplicate-key check sees a key written twice, and only at the top level', () => {
  assert.equal(duplicateKey('{"a":1,"component":"x","b":{"component":2},"component":"y"}'), 'component');
  assert.equal(duplicateKey('{"a":"},\\"a\\":","b":[{"a":1},{"a":2}]}'), null);
  assert.deepEqual(topLevelKeys('{"a":1,"b":{"c":[1,{"d":2}]},"e":"x,\\"f\\":"}'), ['a', 'b', 'e']);
});

test('every line of a process, a call and a component child carries each key once', () => {
  const lines: string[] = [];
  const logging = createLogging({
    config: { service: { name: 'media-service', env: 'production', tenant_id: 'tenant-a' }, log: { level: 'info', format: 'json' } },
    version: 'test',
    destination: { write: (s: string) => void lines.push(s) },
  });
  logging.process.child({ component: 'mediasoup' }).info({ event: 'X' }, 'process line');
  logging.forContext({ trace_id: 't', call_id: 'c', tenant_id: 'tenant-b' }).child({ component: 'recording' }).info('call line');
  assert.equal(lines.length, 2);
  for (const l of lines) assert.equal(duplicateKey(l), null, l);
  const call = JSON.parse(lines[1]!) as Record<string, unknown>;
  assert.equal(call.tenant_id, 'tenant-b', "a call's lines carry its own tenant");
  assert.equal((JSON.parse(lines[0]!) as Record<string, unknown>).tenant_id, 'tenant-a');
});

test("Node's own warnings become JSON log lines on stdout, nothing on stderr, also those raised before the logger existed", () => {
  const script = `
    const { createLogging, holdProcessWarnings } = await import(${JSON.stringify(SRC)});
    const route = holdProcessWarnings();
    process.emitWarning('early warning', { code: 'EARLY' });
    const logging = createLogging({ config: { service: { name: 'm', env: 'production', tenant_id: 't' }, log: { level: 'info', format: 'json' } }, version: 'v' });
    route(logging.process);
    process.emitWarning('a deprecation', 'DeprecationWarning', 'DEP0999');
    await new Promise((r) => setTimeout(r, 50));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'nothing in plain text');
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; message: string; attributes: Record<string, string> });
  assert.deepEqual(lines.map((l) => [l.event, l.message, l.attributes['warning.code']]), [
    ['NODE_WARNING', 'early warning', 'EARLY'],
    ['NODE_WARNING', 'a deprecation', 'DEP0999'],
  ]);
});
