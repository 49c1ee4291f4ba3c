import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FramePairer, type FramePair } from '../../../src/media-path/frame-pairer.ts';

/** A frame whose samples all hold `id`, so a pair shows which frames met. */
const frame = (id: number): Int16Array => new Int16Array(4).fill(id);
const ids = (pairs: FramePair[]): [number | null, number | null][] => pairs.map((p) => [p.caller?.samples[0] ?? null, p.service?.[0] ?? null]);

/** The pairs' frame ids, read as each pair comes: its service frame is the pairer's to reuse later. */
function run(p: FramePairer, ticks: number, callerAt: Map<number, number[]>, from = 0): [number | null, number | null][] {
  const out: [number | null, number | null][] = [];
  for (let t = from; t < from + ticks; t++) {
    for (const id of callerAt.get(t) ?? []) p.caller(frame(id));
    const pair = p.tick(frame(100 + t));
    if (pair) out.push(...ids([pair]));
  }
  return out;
}

test('each caller frame sits beside what the service sent when it arrived, though it came up to the delay late', () => {
  const p = new FramePairer({ delayFrames: 3, maxQueue: 50 });
  // Caller frame k is heard at tick k + 2 but arrives, jittered, at tick k + 2 + j (j up to 3 ticks).
  const jitter = [0, 3, 0, 1, 0, 2, 3, 0, 0, 1];
  const at = new Map<number, number[]>();
  jitter.forEach((j, k) => {
    const t = Math.max(k + 2 + j, ...[...at.keys()].filter((x) => at.get(x)!.length > 0));
    at.set(t, [...(at.get(t) ?? []), k]);
  });
  const pairs = [...run(p, 14, at), ...ids(p.drain())];
  assert.equal(pairs.length, 14, 'one slot per tick');
  // Slot s holds the service's tick s; the caller's frame k sits in slot k + 2.
  assert.deepEqual(pairs.slice(2, 12), jitter.map((_, k) => [k, 100 + k + 2]));
  assert.deepEqual(pairs.slice(0, 2), [[null, 100], [null, 101]]);
  assert.equal(p.stats.late, 0);
});

test('a caller frame later than the delay moves the caller one slot later: counted, nothing lost', () => {
  const p = new FramePairer({ delayFrames: 2, maxQueue: 50 });
  const at = new Map<number, number[]>([
    [0, [0]],
    [1, [1]],
    [6, [2, 3, 4, 5]],
    [7, [6]],
  ]);
  const pairs = [...run(p, 10, at), ...ids(p.drain())];
  const callers = pairs.map(([c]) => c);
  assert.deepEqual(callers, [0, 1, null, null, 2, 3, 4, 5, 6, null]);
  assert.equal(p.stats.late, 2);
});

test('a caller clock running ahead fills the queue; then its oldest frames go', () => {
  const p = new FramePairer({ delayFrames: 1, maxQueue: 5 });
  const at = new Map<number, number[]>([[0, Array.from({ length: 9 }, (_, k) => k)]]);
  const pairs = run(p, 3, at);
  assert.equal(p.stats.dropped, 4);
  assert.deepEqual(pairs.map(([c]) => c), [4, 5]);
});

test('the service is never dropped or delayed beyond the pairing delay, and drain gives back the held slots', () => {
  const p = new FramePairer({ delayFrames: 4, maxQueue: 50 });
  const pairs = run(p, 10, new Map());
  assert.equal(pairs.length, 6);
  assert.deepEqual(pairs.map(([, s]) => s), [100, 101, 102, 103, 104, 105]);
  assert.deepEqual(ids(p.drain()).map(([, s]) => s), [106, 107, 108, 109]);
  assert.deepEqual(p.drain(), []);
});

test('the service frames are copied into slots used in turn: a tick allocates none, and no frame is overwritten while it waits', () => {
  const p = new FramePairer({ delayFrames: 4, maxQueue: 50 });
  // The caller of tick() reuses one array for every frame, as the media clock's mixer does.
  const shared = new Int16Array(4);
  const seen: number[] = [];
  const arrays = new Set<Int16Array>();
  for (let t = 0; t < 40; t++) {
    shared.fill(100 + t);
    const pair = p.tick(shared);
    if (!pair) continue;
    seen.push(pair.service![0]!);
    arrays.add(pair.service!);
  }
  assert.deepEqual(seen, Array.from({ length: 36 }, (_, k) => 100 + k));
  assert.equal(arrays.size, 6, 'delay + 2 slots, reused');
  assert.deepEqual(ids(p.drain()).map(([, s]) => s), [136, 137, 138, 139]);
});

test('caller frames are copied into slots used in turn: the caller may reuse its array, and a steady stream allocates no slot per frame', () => {
  const p = new FramePairer({ delayFrames: 4, maxQueue: 50 });
  // The timeline hands each tap the same frame; a tap must not keep it past its call.
  const shared = new Int16Array(4);
  const seen: [number, number, boolean][] = [];
  const slots = new Set<Int16Array>();
  for (let t = 0; t < 40; t++) {
    shared.fill(t);
    p.caller(shared, 1000 + 160 * t, t % 5 === 0);
    shared.fill(-1);
    const pair = p.tick(null);
    if (!pair?.caller) continue;
    seen.push([pair.caller.samples[0]!, pair.caller.timestamp, pair.caller.concealed]);
    slots.add(pair.caller.samples);
  }
  assert.deepEqual(
    seen,
    Array.from({ length: 36 }, (_, k) => [k, 1000 + 160 * k, k % 5 === 0]),
  );
  assert.ok(slots.size <= 6, `${slots.size} slots for 36 frames`);
  assert.deepEqual(ids(p.drain()).map(([c]) => c), [36, 37, 38, 39]);
});
