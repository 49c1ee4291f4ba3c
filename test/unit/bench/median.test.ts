import { test } from 'node:test';
import assert from 'node:assert/strict';
import { median } from '../../../bench/lib/proc.ts';

test('the median of an even count is the mean of the middle two, of an odd count the middle one', () => {
  assert.equal(median([4.34, 13.01]), 8.675);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([10, 1, 4, 2]), 3);
  assert.ok(Number.isNaN(median([])));
});
