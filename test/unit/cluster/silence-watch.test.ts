import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SilenceWatch } from '../../../src/cluster/silence-watch.ts';

/** A watch on a clock the test moves, checked every 250 ms of it as the timer would. */
function driven(timeoutMs: number): { watch: SilenceWatch; fired: number[]; advance(ms: number, beatEveryMs?: number): void } {
  let t = 0;
  const fired: number[] = [];
  const watch = new SilenceWatch({ timeoutMs, onSilent: (ms) => fired.push(ms), now: () => t, manual: true });
  watch.arm();
  return {
    watch,
    fired,
    advance(ms, beatEveryMs) {
      for (let step = 0; step < ms; step += 250) {
        t += 250;
        if (beatEveryMs && t % beatEveryMs === 0) watch.beat();
        watch.check();
      }
    },
  };
}

test('a process heard from regularly is never reported; one silent past the timeout is reported once', () => {
  const d = driven(2000);
  d.advance(10_000, 500);
  assert.deepEqual(d.fired, []);
  d.advance(5000);
  assert.equal(d.fired.length, 1, 'reported once, however long the silence');
  assert.ok(d.fired[0]! > 2000 && d.fired[0]! <= 2250, `reported after ${d.fired[0]} ms`);
});

test('a check that ran late (the watcher itself was stopped) is not silence: the count starts again', () => {
  let t = 0;
  const fired: number[] = [];
  const watch = new SilenceWatch({ timeoutMs: 2000, onSilent: (ms) => fired.push(ms), now: () => t, manual: true });
  watch.arm();
  t = 5000; // the watcher's own loop was held for 5 s
  watch.check();
  assert.deepEqual(fired, []);
  for (let k = 0; k < 8; k++) {
    t += 250;
    watch.check();
  }
  assert.deepEqual(fired, []);
  t += 250;
  watch.check();
  assert.equal(fired.length, 1, 'silent 2.25 s after the watcher woke');
});

test('a zero timeout never arms; a real timer reports a silent process; disarm stops it', async () => {
  const fired: number[] = [];
  const off = new SilenceWatch({ timeoutMs: 0, onSilent: (ms) => fired.push(ms) });
  off.arm();
  const on = new SilenceWatch({ timeoutMs: 40, onSilent: (ms) => fired.push(ms) });
  on.arm();
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(fired.length, 1, 'the armed watch with nobody beating fired, the zero one did not');
  const stopped = new SilenceWatch({ timeoutMs: 40, onSilent: (ms) => fired.push(ms) });
  stopped.arm();
  stopped.disarm();
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(fired.length, 1);
});
