import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MediaClock, type Clocked } from '../../../src/media-path/clock.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const recorder = (): Clocked & { at: number[] } => {
  const at: number[] = [];
  return { at, tick: (now) => void at.push(now) };
};

test('expedite moves a silent call onto the next slot; settle puts it back without a tick gained', async () => {
  const clock = new MediaClock({ onError: (e) => assert.fail(String(e)) });
  // Four slots: control and c share slot 0, one filler on each other slot.
  const control = recorder();
  const fillers = [recorder(), recorder(), recorder()];
  const c = recorder();
  for (const x of [control, ...fillers, c]) clock.add(x);
  try {
    await sleep(60);
    // Right after slot 0 fired: the soonest slot is slot 1, 5 ms away, not c's own in 20 ms.
    const seen = control.at.length;
    while (control.at.length === seen) await new Promise((r) => setImmediate(r));
    const t = performance.now();
    assert.equal(clock.expedite(c), true);
    assert.equal(clock.expedite(c), true, 'a second call before the tick changes nothing');
    const nextControl = await (async () => {
      while (!control.at.some((x) => x > t)) await sleep(1);
      return control.at.find((x) => x > t)!;
    })();
    const first = c.at.find((x) => x > t)!;
    assert.ok(first < nextControl, `c ticked at +${(first - t).toFixed(1)} ms, before its own slot (+${(nextControl - t).toFixed(1)} ms)`);
    await sleep(100);
    // From there a steady 20 ms: exactly on the firings of the slot it was moved to (slot 1,
    // or a later one when this test's own wake-up came after slot 1 fired on a busy machine).
    const during = c.at.filter((x) => x >= first);
    assert.ok(during.length >= 5);
    const moved = fillers.find((f) => f.at.includes(first));
    assert.ok(moved, 'c ticks with one of the other slots');
    for (const x of during) assert.ok(moved.at.includes(x), 'c ticks with the slot it was moved to');
    const f1 = moved.at.length;
    while (moved.at.length === f1) await new Promise((r) => setImmediate(r));
    assert.equal(c.at.length, control.at.length + 1, 'right after that slot fired: one tick ahead while expedited');
    clock.settle(c);
    await sleep(100);
    assert.equal(c.at.length, control.at.length, 'the gained tick was given back');
    assert.deepEqual(c.at.slice(-4), control.at.slice(-4), 'back on its own phase');
    assert.equal(clock.expedite(control), true);
    clock.remove(control);
    await sleep(50);
  } finally {
    clock.stop();
  }
});
