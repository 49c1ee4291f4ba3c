import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { WakeCoalescer } from '../../../src/media-path/wake-coalescing.ts';

const nextTurn = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

/** When the turn after this one may start: a timer due now runs only after the check phase's nap. */
function turnEnds(): Promise<number> {
  return new Promise((r) => setTimeout(() => r(performance.now()), 0));
}

test('a turn with packets naps once, for what is left of the window since its first packet', async () => {
  const wake = new WakeCoalescer(5);
  await nextTurn();
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) wake.packet();
  const after = await turnEnds();
  assert.equal(wake.naps, 1);
  // Timers fire in whole milliseconds, so the bound below the window is loose on one side only.
  assert.ok(after - t0 >= 4.5, `the next turn began ${(after - t0).toFixed(2)} ms after the first packet`);
  // The next turn's packets get a nap of their own.
  wake.packet();
  await turnEnds();
  assert.equal(wake.naps, 2);
});

test('a turn that already took the window does not nap, and a window of 0 never does', async () => {
  const wake = new WakeCoalescer(1);
  await nextTurn();
  wake.packet();
  const busyUntil = performance.now() + 3;
  while (performance.now() < busyUntil);
  await turnEnds();
  assert.equal(wake.naps, 0);
  const off = new WakeCoalescer(0);
  for (let i = 0; i < 5; i++) {
    off.packet();
    await nextTurn();
  }
  assert.equal(off.naps, 0);
});
