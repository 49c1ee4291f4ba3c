import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdleCompaction } from '../../../src/util/idle-compaction.ts';
import type { Logger } from '../../../src/logging/logger.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('one full collection runs once the process has been idle a whole check after calls, not while calls run', async () => {
  const runs: Record<string, unknown>[] = [];
  const log = { info: (o: { attributes: Record<string, unknown> }) => runs.push(o.attributes) } as unknown as Logger;
  let calls = 1;
  let opened = 1;
  const c = new IdleCompaction({ idle: () => calls === 0, activity: () => opened, checkMs: 20, log });
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
  const c = new IdleCompaction({ idle: () => calls === 0, activity: () => 0, checkMs: 60_000, log });
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
