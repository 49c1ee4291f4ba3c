import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TalkDetector } from '../../../src/conference/talk-detector.ts';

const level = (dbfs: number) => {
  // A square wave of this mean-square level.
  const amp = Math.round(32768 * 10 ** (dbfs / 20));
  return Int16Array.from({ length: 160 }, (_, i) => (i % 2 ? amp : -amp));
};

test('starts on the first loud frame, holds through pauses, stops after the hold', () => {
  const d = new TalkDetector({ thresholdDbfs: -40, holdMs: 100 });
  assert.equal(d.update(level(-60)), null);
  assert.equal(d.talking, false);
  assert.equal(d.update(level(-20)), 'started');
  assert.equal(d.update(level(-20)), null);
  // A pause shorter than the hold: still talking.
  for (let k = 0; k < 4; k++) assert.equal(d.update(null), null);
  assert.equal(d.update(level(-30)), null);
  assert.equal(d.talking, true);
  const changes = [];
  for (let k = 0; k < 5; k++) changes.push(d.update(level(-55)));
  assert.deepEqual(changes, [null, null, null, null, 'stopped']);
  assert.equal(d.talking, false);
  assert.ok(Math.abs(d.level - -55) < 0.2, `level ${d.level}`);
});

test('a frame just at the threshold counts, just below does not', () => {
  const d = new TalkDetector({ thresholdDbfs: -40, holdMs: 20 });
  assert.equal(d.update(level(-40.3)), null);
  assert.equal(d.update(level(-39.7)), 'started');
  assert.equal(d.update(null), 'stopped');
});
