import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodePool } from '../../../src/playback/decode-pool.ts';

const job = () => {
  const pcm = Int16Array.from({ length: 320 }, (_, i) => (i % 2 ? 1000 : -1000));
  return { bytes: pcm.buffer, rawPcmRate: 16000, rate: 8000, maxSeconds: 1, timeoutMs: 5000 };
};

test('the decoding thread starts with the first job, stops when idle, and starts again for the next', async () => {
  const pool = new DecodePool({ idleMs: 150 });
  try {
    assert.equal(pool.running, false, 'no thread before any prompt needs one');
    const a = await pool.decode(job());
    assert.equal(a.length, 160);
    assert.equal(pool.running, true);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(pool.running, false, 'the idle thread was not stopped');
    const b = await pool.decode(job());
    assert.deepEqual(b, a, 'a thread started again decodes the same');
    assert.equal(pool.running, true);
  } finally {
    await pool.close();
  }
});

test('a thread with jobs waiting is not stopped by the idle timer', async () => {
  const pool = new DecodePool({ idleMs: 50 });
  try {
    await pool.decode(job());
    const waits = Array.from({ length: 20 }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * 10));
      return pool.decode(job());
    });
    const out = await Promise.all(waits);
    assert.equal(out.length, 20);
    for (const o of out) assert.equal(o.length, 160);
  } finally {
    await pool.close();
  }
});
