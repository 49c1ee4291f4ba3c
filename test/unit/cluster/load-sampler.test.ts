import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { LoadSampler } from '../../../src/cluster/load-sampler.ts';

const busy = (ms: number): void => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

test('the loop delay it reports: near zero idle, high when the loop is held again and again, not moved by one pause', async () => {
  let sessions = 3;
  const sampler = new LoadSampler(() => sessions);
  sampler.start();
  try {
    sampler.read();
    await sleep(500);
    const idle = sampler.read();
    assert.ok(idle.loopLagMs < 10, `idle loop read ${idle.loopLagMs.toFixed(1)} ms`);
    assert.equal(idle.sessions, 3);

    // One 80 ms pause in half a second of probes: the 95th percentile stays low.
    await sleep(200);
    busy(80);
    await sleep(300);
    const once = sampler.read();
    assert.ok(once.loopLagMs < 10, `one pause read ${once.loopLagMs.toFixed(1)} ms`);

    // Held for 30 ms out of every 40: nearly every probe fires late.
    const until = performance.now() + 500;
    while (performance.now() < until) {
      busy(30);
      await sleep(10);
    }
    const held = sampler.read();
    assert.ok(held.loopLagMs > 15, `a loop held 75% of the time read ${held.loopLagMs.toFixed(1)} ms`);
    assert.ok(held.cpu > 0.3, `CPU read ${held.cpu.toFixed(2)} while the loop spun`);
    sessions = 5;
    assert.equal(sampler.read().sessions, 5);
  } finally {
    sampler.stop();
  }
});
