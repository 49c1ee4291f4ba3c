import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InjectionSource } from '../../../src/audio-inject/injection-source.ts';

const quiet = { mark: () => {}, underrun: () => {}, drained: () => {} };

/** Plays the source out tick by tick; returns every sample heard, in order. */
function playOut(src: InjectionSource, maxTicks = 10_000): Int16Array {
  const heard: number[] = [];
  const acc = new Int32Array(160);
  for (let t = 0; t < maxTicks && src.bufferedSamples() > 0; t++) {
    acc.fill(0);
    if (src.mixInto(acc)) for (const v of acc) heard.push(v);
  }
  return Int16Array.from(heard);
}

test('a message larger than the room left is kept whole: nothing is cut, the stream is told to wait', () => {
  // 1 s of room, 1.5 s in one message (the case that used to play 0.52 s).
  const src = new InjectionSource({ inputRate: 8000, callRate: 8000, maxBufferMs: 1000, events: quiet });
  const pcm = Int16Array.from({ length: 12_000 }, (_, i) => (i % 1000) + 1);
  src.push(pcm);
  assert.equal(src.bufferedSamples(), 12_000);
  assert.equal(src.full, true, 'the reader must wait before taking the next message');
  const heard = playOut(src);
  assert.equal(heard.length, 12_000);
  assert.deepEqual(Array.from(heard), Array.from(pcm), 'every sample, in order');
});

test('drained fires once the queue, overflow included, falls to the low-water mark', () => {
  let drained = 0;
  const src = new InjectionSource({ inputRate: 8000, callRate: 8000, maxBufferMs: 1000, events: { ...quiet, drained: () => drained++ } });
  src.push(new Int16Array(16_000).fill(1));
  const acc = new Int32Array(160);
  let ticks = 0;
  while (drained === 0 && ticks < 1000) {
    acc.fill(0);
    src.mixInto(acc);
    ticks++;
  }
  assert.equal(drained, 1);
  assert.ok(src.bufferedSamples() <= 2000 && src.bufferedSamples() > 1800, `${src.bufferedSamples()} samples left when drained`);
  assert.equal(ticks, Math.ceil((16_000 - 2000) / 160));
});

test('a mark behind an oversized message is answered after its audio, clear drops the overflow too', async () => {
  const marks: { name: string; cleared: boolean }[] = [];
  const src = new InjectionSource({ inputRate: 16000, callRate: 8000, maxBufferMs: 200, events: { ...quiet, mark: (m) => marks.push(m) } });
  src.push(new Int16Array(16_000).fill(100));
  src.mark('after-1s');
  const acc = new Int32Array(160);
  for (let t = 0; t < 40; t++) {
    acc.fill(0);
    src.mixInto(acc);
  }
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(marks, [], 'not before its audio played');
  const dropped = src.clear();
  assert.ok(dropped > 1000, `clear dropped ${dropped} samples, ring and overflow`);
  assert.equal(src.bufferedSamples(), 0);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(marks, [{ name: 'after-1s', cleared: true }]);
});

test('the queue grows past its first second while it wraps, and every sample still plays in order', () => {
  const src = new InjectionSource({ inputRate: 8000, callRate: 8000, maxBufferMs: 10_000, events: quiet });
  const ramp = Int16Array.from({ length: 8000 * 4 }, (_, i) => (i % 30_000) + 1);
  const heard: number[] = [];
  const acc = new Int32Array(160);
  const play = (ticks: number): void => {
    for (let t = 0; t < ticks; t++) {
      acc.fill(0);
      if (src.mixInto(acc)) for (const v of acc) heard.push(v);
    }
  };
  // 875 ms queued, 500 ms played: the ring's start has moved, and the next message wraps around its end.
  src.push(ramp.subarray(0, 7000));
  play(25);
  src.push(ramp.subarray(7000, 11_000));
  assert.equal(src.bufferedSamples(), 7000);
  // 2.6 s more while wrapped: the ring grows, the queue unwrapped into it.
  src.push(ramp.subarray(11_000));
  assert.equal(src.bufferedSamples(), ramp.length - 4000);
  assert.equal(src.full, false);
  heard.push(...playOut(src));
  assert.equal(heard.length, ramp.length);
  assert.deepEqual(heard, Array.from(ramp), 'every sample, in order');
});
