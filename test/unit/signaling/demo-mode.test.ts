import { test } from 'node:test';
import assert from 'node:assert/strict';
import { demoEnabled } from '../../../src/signaling/demo-mode.ts';

test('auto: the demo is on in development and tests, off in production', () => {
  assert.equal(demoEnabled('auto', 'development'), true);
  assert.equal(demoEnabled('auto', 'test'), true);
  assert.equal(demoEnabled('auto', 'production'), false);
});

test('an explicit setting wins over the environment, written as a string or a TOML boolean', () => {
  for (const on of ['true', true] as const) assert.equal(demoEnabled(on, 'production'), true);
  for (const off of ['false', false] as const) assert.equal(demoEnabled(off, 'development'), false);
});
