import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzz, mutate, Rng } from '../fuzz/targets.ts';

test('every parser at the edge holds its invariants on 5,000 mutated inputs each (fixed seed)', () => {
  const counts = fuzz(20261203, 5_000);
  assert.ok(Object.keys(counts).length >= 6);
  for (const [name, n] of Object.entries(counts)) assert.equal(n, 5_000, name);
});

test('the mutator produces truncated, grown and altered inputs, repeatably from a seed', () => {
  const seed = Buffer.alloc(32, 1);
  const a = Array.from({ length: 200 }, (_, i) => mutate(new Rng(i + 1), seed));
  const b = Array.from({ length: 200 }, (_, i) => mutate(new Rng(i + 1), seed));
  assert.deepEqual(a, b);
  assert.ok(a.some((x) => x.length < 32) && a.some((x) => x.length > 32) && a.some((x) => x.length === 32 && !x.equals(seed)));
});
