import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { FrameHistogram } from '../../../src/metrics/frame-histogram.ts';

const BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5];

test('scrapes to the same text as prom-client’s histogram given the same values, also after a reset', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const fast = new FrameHistogram({ name: 'frame_latency_seconds', help: 'latency', buckets: BUCKETS, registers: [ours] });
  const reference = new Histogram({ name: 'frame_latency_seconds', help: 'latency', buckets: BUCKETS, registers: [theirs] });
  // Every bucket, values on their bounds (le is inclusive), above the last, and zero.
  const values = [0, 0.0005, 0.0004, 0.00051, 0.0015, 0.002, 0.003, 0.007, 0.015, 0.03, 0.07, 0.3, 0.5, 0.9, 12];
  for (let k = 0; k < 3; k++) {
    for (const v of values) {
      fast.observe(v * (k + 1));
      reference.observe(v * (k + 1));
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
  }
  assert.match(await ours.metrics(), /frame_latency_seconds_bucket\{le="\+Inf"\} 45/);
  ours.resetMetrics();
  theirs.resetMetrics();
  fast.observe(0.001);
  reference.observe(0.001);
  assert.equal(await ours.metrics(), await theirs.metrics());
});
