import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gainFactor, MixMinus } from '../../../src/conference/mix-minus.ts';

const N = 160;
const tone = (amp: number, period: number) => Int16Array.from({ length: N }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * i) / period)));

test('each contributor hears exactly the others, the rest hear everyone', () => {
  const m = new MixMinus(N);
  const a = tone(8000, 16);
  const b = tone(6000, 10);
  const c = tone(4000, 7);
  const own = [new Int32Array(N), new Int32Array(N), new Int32Array(N)];
  m.begin();
  m.add(a, 1, own[0]!);
  m.add(b, 1, own[1]!);
  m.add(c, 1, own[2]!);
  assert.equal(m.finish(), true);
  const out = new Int16Array(N);
  assert.equal(m.minus(own[0]!, out), true);
  for (let i = 0; i < N; i++) assert.equal(out[i], b[i]! + c[i]!);
  m.minus(own[2]!, out);
  for (let i = 0; i < N; i++) assert.equal(out[i], a[i]! + b[i]!);
  for (let i = 0; i < N; i++) assert.equal(m.shared[i], a[i]! + b[i]! + c[i]!);
});

test('a lone contributor hears nothing back, and nobody contributing is silence for all', () => {
  const m = new MixMinus(N);
  const own = new Int32Array(N);
  m.begin();
  assert.equal(m.finish(), false);
  m.begin();
  m.add(tone(9000, 20), 1, own);
  assert.equal(m.finish(), true);
  assert.equal(m.minus(own, new Int16Array(N)), false);
});

test('loud talkers saturate and never wrap; the minus is formed before clipping', () => {
  const m = new MixMinus(N);
  const loud = new Int16Array(N).fill(30000);
  const quiet = new Int16Array(N).fill(1000);
  const owns = Array.from({ length: 5 }, () => new Int32Array(N));
  m.begin();
  for (let k = 0; k < 4; k++) m.add(loud, 1, owns[k]!);
  m.add(quiet, 1, owns[4]!);
  m.finish();
  // 4 x 30000 + 1000 wraps to a negative number in 16 bits; saturated it stays at the top.
  assert.ok(m.shared.every((v) => v === 32767));
  const out = new Int16Array(N);
  m.minus(owns[4]!, out);
  assert.ok(out.every((v) => v === 32767), 'the quiet one hears the loud ones, saturated');
  // A "sum, clamp, subtract own" mixer would give 32767 - 30000 = 2767 here: own voice gone,
  // others crushed. Formed before clipping, a loud talker hears the other three, saturated.
  m.minus(owns[0]!, out);
  assert.ok(out.every((v) => v === 32767));
  // Negative side too.
  m.begin();
  const neg = new Int16Array(N).fill(-30000);
  for (let k = 0; k < 3; k++) m.add(neg, 1, owns[k]!);
  m.finish();
  assert.ok(m.shared.every((v) => v === -32768));
});

test('gain scales a contribution and its own minus alike', () => {
  const m = new MixMinus(N);
  const a = new Int16Array(N).fill(1000);
  const b = new Int16Array(N).fill(1000);
  const ownA = new Int32Array(N);
  const ownB = new Int32Array(N);
  m.begin();
  m.add(a, gainFactor(6), ownA);
  m.add(b, gainFactor(-6), ownB);
  m.finish();
  const out = new Int16Array(N);
  m.minus(ownA, out);
  assert.equal(out[0], Math.round(1000 * 10 ** (-6 / 20)));
  m.minus(ownB, out);
  assert.equal(out[0], Math.round(1000 * 10 ** (6 / 20)));
});
