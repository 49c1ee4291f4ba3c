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
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    assert.ok(once.loopLagMs < 10, `one pause read ${once.loopLagMs.toFixed(1)} ms`);

    // Held for 30 ms out of every 40: nearly every probe fires late.
    const until = performance.now() + 500;
    while (performance.now() < until) {
      busy(30);
      await sleep(10);
    }
    const held = sampler.read();
    const used = process.cpuUsage(cpu0);
    // What the process really got (a shared machine may give it less than the spin asked for).
    const got = (used.user + used.system) / 1000 / (performance.now() - t0);
    assert.ok(held.loopLagMs > 15, `a loop held 75% of the time read ${held.loopLagMs.toFixed(1)} ms`);
    // The reading is smoothed: half the last one, half this interval's.
    const expected = 0.5 * once.cpu + 0.5 * got;
    assert.ok(got > 0.05 && Math.abs(held.cpu - expected) < 0.1, `CPU read ${held.cpu.toFixed(2)} while the process used ${got.toFixed(2)} (expected ${expected.toFixed(2)})`);
    sessions = 5;
    assert.equal(sampler.read().sessions, 5);
  } finally {
    sampler.stop();
  }
});
