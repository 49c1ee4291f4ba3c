import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const LOGGER = fileURLToPath(new URL('../../../src/logging/logger.ts', import.meta.url));

/** A process that logs through the service's JSON logger, then exits while lines still wait. */
const SCRIPT = `
const { createLogging } = await import(${JSON.stringify(LOGGER)});
const logging = createLogging({ config: { service: { name: 'media', env: 'production', tenant_id: 't' }, log: { level: 'info', format: 'json' } }, version: 'test' });
process.stdin.once('data', () => {
  for (let i = 0; i < 5000; i++) logging.process.info({ event: 'FILLER' }, 'x'.repeat(200));
  process.exit(0);
});
logging.process.info({ event: 'READY' }, 'ready');
`;

test('a process whose stdout reader is gone still exits: the lines waiting are dropped, not retried forever', async () => {
  const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [first] = (await once(child.stdout!, 'data')) as [Buffer];
  assert.match(first.toString(), /"event":"READY"/);
  // The reader goes away; then the process writes 1 MB of lines and exits.
  child.stdout!.destroy();
  child.stdin!.write('go\n');
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const timeout = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000).unref());
  const result = await Promise.race([exited, timeout]);
  if (result === 'hung') child.kill('SIGKILL');
  assert.notEqual(result, 'hung', 'the process hung in its exit flush');
  assert.deepEqual(result, [0, null]);
});
