import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdleCompaction, LoadDrop } from '../../../src/util/idle-compaction.ts';
import type { Logger } from '../../../src/logging/logger.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('one full collection runs once the process has been idle a whole check after calls, not while calls run', async () => {
  const runs: Record<string, unknown>[] = [];
  const log = { info: (o: { attributes: Record<string, unknown> }) => runs.push(o.attributes) } as unknown as Logger;
  let calls = 1;
  let opened = 1;
  const c = new IdleCompaction({ idle: () => calls === 0, activity: () => opened, load: () => calls, checkMs: 20, log });
  try {
    await sleep(120);
    assert.equal(runs.length, 0, 'a collection ran while a call was live');
    calls = 0;
    await sleep(120);
    assert.equal(runs.length, 1, 'no collection after the calls ended');
    assert.equal(typeof runs[0]!['gc.ms'], 'number');
    await sleep(120);
    assert.equal(runs.length, 1, 'an idle process is not collected again and again');
    // A call came and went between two checks: the process was not idle all along.
    opened++;
    await sleep(120);
    assert.equal(runs.length, 2);
  } finally {
    c.stop();
  }
});

test('once after start, the heap start-up grew is compacted, unless a call came first', async () => {
  const runs: Record<string, unknown>[] = [];
  const log = { info: (o: { attributes: Record<string, unknown> }) => runs.push(o.attributes) } as unknown as Logger;
  let calls = 0;
  const c = new IdleCompaction({ idle: () => calls === 0, activity: () => 0, load: () => calls, checkMs: 60_000, log });
  try {
    // Something to give back: a young generation grown by allocation, as start-up grows it.
    let keep: number[][] = [];
    for (let i = 0; i < 200_000; i++) keep.push([i]);
    keep = [];
    const before = process.memoryUsage().heapTotal;
    c.afterStart(10);
    await sleep(100);
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!['compaction.after'], 'start');
    assert.ok(process.memoryUsage().heapTotal < before, 'the heap was not made smaller');
    calls = 1;
    c.afterStart(10);
    await sleep(100);
    assert.equal(runs.length, 1, 'a compaction ran while a call was live');
  } finally {
    c.stop();
  }
});

test('a collection is due once the load fell to half its peak, by 20 calls or more, and then only after a new peak', () => {
  const d = new LoadDrop();
  const seen = [10, 30, 20, 15, 16, 100, 60, 51, 50, 40, 30, 25, 24].map((n) => d.observe(n));
  // 30 -> 15 is half but only 15 gone; 100 -> 50 is; after it the peak is 50: 25 is half again.
  assert.deepEqual(seen, [false, false, false, false, false, false, false, false, true, false, false, true, false]);
});

test('while calls go on, a drop to half the peak runs a collection that gives back the heap the peak grew', async () => {
  const runs: { event: string; attributes: Record<string, unknown> }[] = [];
  const log = { info: (o: { event: string; attributes: Record<string, unknown> }) => runs.push(o) } as unknown as Logger;
  let calls = 200;
  const c = new IdleCompaction({ idle: () => calls === 0, activity: () => 1, load: () => calls, checkMs: 20, log });
  try {
    await sleep(60);
    // Garbage the peak left in the old generation: objects that lived a while, then let go.
    let kept: number[][] | null = Array.from({ length: 400_000 }, (_, i) => [i, i]);
    await sleep(60);
    const held = process.memoryUsage().heapUsed;
    kept = null;
    calls = 10;
    await sleep(300);
    const drops = runs.filter((r) => r.event === 'LOAD_DROP_COLLECTION');
    assert.equal(drops.length, 1, JSON.stringify(runs));
    assert.equal(drops[0]!.attributes['load.now'], 10);
    assert.equal(kept, null);
    assert.ok(process.memoryUsage().heapUsed < held - 10 * 2 ** 20, `heap ${process.memoryUsage().heapUsed} of ${held} still used`);
    assert.equal(runs.filter((r) => r.event === 'IDLE_COMPACTION').length, 0, 'calls are live: no compaction');
  } finally {
    c.stop();
  }
});
