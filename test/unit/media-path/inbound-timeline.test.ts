import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InboundTimeline, type TimelineFrame } from '../../../src/media-path/inbound-timeline.ts';

/** A packet whose every sample holds its own RTP timestamp (mod 2^15), to check placement. */
const pcmAt = (ts: number, n = 160): Int16Array => Int16Array.from({ length: n }, (_, i) => ((ts + i) % 32000) + 1);

function setup(window = 40) {
  const frames: TimelineFrame[] = [];
  const t = new InboundTimeline({ reorderWindowMs: window, onFrame: (f) => frames.push(f) });
  return { t, frames };
}

const assertPlaced = (f: TimelineFrame): void => {
  for (let i = 0; i < f.samples.length; i++) assert.equal(f.samples[i], ((f.timestamp + i) % 32000) + 1, `sample ${i} of frame ${f.timestamp}`);
};

test('packets in order come out at once, one frame each, on the caller clock', () => {
  const { t, frames } = setup();
  for (let k = 0; k < 10; k++) t.push(k * 20, 100 + k, 1000 + k * 160, 7, pcmAt(1000 + k * 160));
  assert.equal(frames.length, 10);
  frames.forEach((f, k) => {
    assert.equal(f.timestamp, 1000 + k * 160);
    assert.equal(f.concealed, false);
    assertPlaced(f);
  });
});

test('a lost packet is concealed once the reorder window passed, and the clock has no gap', () => {
  const { t, frames } = setup(40);
  t.push(0, 1, 0, 7, pcmAt(0));
  t.push(20, 2, 160, 7, pcmAt(160));
  // seq 3 lost
  t.push(60, 4, 480, 7, pcmAt(480));
  assert.equal(frames.length, 2, 'waits for the missing packet');
  t.tick(70);
  assert.equal(frames.length, 2, 'still inside the window');
  t.tick(101);
  assert.equal(frames.length, 4);
  assert.equal(frames[2]!.concealed, true);
  assert.equal(frames[2]!.timestamp, 320);
  assert.ok(frames[2]!.samples.every((s) => s === 0));
  assert.equal(frames[3]!.timestamp, 480);
  assertPlaced(frames[3]!);
  assert.equal(t.stats.concealedFrames, 1);
});

test('reordered packets within the window are put back in order', () => {
  const { t, frames } = setup();
  t.push(0, 1, 0, 7, pcmAt(0));
  t.push(25, 3, 320, 7, pcmAt(320));
  t.push(30, 2, 160, 7, pcmAt(160));
  t.push(40, 4, 480, 7, pcmAt(480));
  assert.deepEqual(frames.map((f) => f.timestamp), [0, 160, 320, 480]);
  assert.ok(frames.every((f) => !f.concealed));
  frames.forEach(assertPlaced);
  assert.equal(t.stats.reordered, 1);
});

test('a late packet after its frame was concealed is dropped and counted', () => {
  const { t, frames } = setup(40);
  t.push(0, 1, 0, 7, pcmAt(0));
  t.push(40, 3, 320, 7, pcmAt(320));
  t.tick(100);
  t.push(110, 2, 160, 7, pcmAt(160));
  assert.deepEqual(frames.map((f) => [f.timestamp, f.concealed]), [[0, false], [160, true], [320, false]]);
  assert.equal(t.stats.late, 1);
});

test('silence suppression (timestamp jump, no sequence gap) is filled at once', () => {
  const { t, frames } = setup();
  t.push(0, 10, 0, 7, pcmAt(0));
  t.push(500, 11, 160 * 26, 7, pcmAt(160 * 26));
  assert.equal(frames.length, 27);
  assert.ok(frames.slice(1, 26).every((f) => f.concealed));
  assertPlaced(frames[26]!);
});

test('when packets stop, ticks keep the clock running with concealed frames', () => {
  const { t, frames } = setup(40);
  t.push(0, 1, 0, 7, pcmAt(0));
  for (let now = 20; now <= 1000; now += 20) t.tick(now);
  // Frame k is due at 20k ms and concealed once now > 20k + 40: at 1000 ms, k = 1..47.
  assert.equal(frames.length, 1 + 47);
  frames.slice(1).forEach((f, i) => assert.equal(f.timestamp, 160 * (i + 1)));
});

test('an SSRC change restarts the timeline on the new stream', () => {
  const { t, frames } = setup();
  t.push(0, 1, 0, 7, pcmAt(0));
  t.push(20, 5000, 99_040, 8, pcmAt(99_040));
  t.push(40, 5001, 99_200, 8, pcmAt(99_200));
  assert.deepEqual(frames.map((f) => f.timestamp), [0, 99_040, 99_200]);
  frames.forEach(assertPlaced);
  assert.equal(t.stats.resyncs, 1);
});

test('30 ms packets are re-framed to 20 ms without losing samples', () => {
  const { t, frames } = setup();
  for (let k = 0; k < 4; k++) t.push(k * 30, k, k * 240, 7, pcmAt(k * 240, 240));
  assert.equal(frames.length, 6);
  frames.forEach((f, k) => {
    assert.equal(f.timestamp, k * 160);
    assertPlaced(f);
  });
});

test('sequence and timestamp wrap-around keep the stream continuous', () => {
  const { t, frames } = setup();
  const ts0 = 0xffffffff - 160 * 2 + 1;
  for (let k = 0; k < 5; k++) t.push(k * 20, (65534 + k) & 0xffff, (ts0 + k * 160) >>> 0, 7, new Int16Array(160).fill(k + 1));
  assert.equal(frames.length, 5);
  assert.deepEqual(frames.map((f) => f.samples[0]), [1, 2, 3, 4, 5]);
  assert.equal(t.stats.concealedFrames, 0);
});

test('a sender that resumes behind the clock after a stall is heard again after 200 ms, on a continuous clock', () => {
  const { t, frames } = setup(40);
  for (let k = 0; k < 5; k++) t.push(k * 20, k, k * 160, 7, pcmAt(k * 160));
  // The sender stalls for 500 ms, then carries on from where it stopped, at real-time pace.
  for (let now = 100; now < 600; now += 20) t.tick(now);
  for (let k = 5; k < 30; k++) {
    const now = 600 + (k - 5) * 20;
    t.push(now, k, k * 160, 7, pcmAt(k * 160));
    t.tick(now);
  }
  // Packets 5-14 (200 ms) are dropped as late; from packet 15 on the stream plays again.
  assert.equal(t.stats.late, 10);
  assert.equal(t.stats.rebased, 1);
  const heard = frames.filter((f) => !f.concealed);
  assert.deepEqual(
    heard.map((f) => f.samples[0]),
    [...[0, 1, 2, 3, 4], ...Array.from({ length: 15 }, (_, i) => 15 + i)].map((k) => pcmAt(k * 160)[0]),
  );
  frames.forEach((f, i) => assert.equal(f.timestamp, i * 160, 'our timestamps stay continuous'));
});

test('a catch-up burst after a stall is not mistaken for a stream behind the clock, even when it is slowed', () => {
  for (const spacingMs of [0, 15]) {
    const { t, frames } = setup(40);
    for (let k = 0; k < 5; k++) t.push(k * 20, k, k * 160, 7, pcmAt(k * 160));
    for (let now = 100; now <= 400; now += 20) t.tick(now);
    // The stalled packets come faster than real time until the sender is in time again.
    let now = 400;
    for (let k = 5; k < 75; k++, now += spacingMs) {
      t.push(now, k, k * 160, 7, pcmAt(k * 160));
      t.tick(now);
    }
    assert.equal(t.stats.rebased, 0, `spacing ${spacingMs} ms`);
    assert.ok(t.stats.late > 0);
    frames.forEach((f, i) => assert.equal(f.timestamp, i * 160));
    frames.filter((f) => !f.concealed).forEach(assertPlaced);
    assert.equal(frames.at(-1)!.timestamp, 74 * 160, `in time with the sender again (spacing ${spacingMs} ms)`);
  }
});

test('a reordered straggler never moves the clock', () => {
  const { t } = setup(40);
  t.push(0, 1, 0, 7, pcmAt(0));
  t.push(40, 3, 320, 7, pcmAt(320));
  t.tick(100);
  for (let k = 0; k < 20; k++) t.push(110 + k * 20, 2, 160, 7, pcmAt(160));
  assert.equal(t.stats.rebased, 0);
});

test('a sender that caught up part of a stall and then carries on behind the clock is heard again', () => {
  const { t, frames } = setup(40);
  for (let k = 0; k < 5; k++) t.push(k * 20, k, k * 160, 7, pcmAt(k * 160));
  for (let now = 100; now < 600; now += 20) t.tick(now);
  // A short burst makes up 100 ms of the 500 ms stall; then the stream goes on at real-time pace.
  for (let k = 5; k < 10; k++) t.push(600, k, k * 160, 7, pcmAt(k * 160));
  for (let k = 10; k < 40; k++) {
    const now = 600 + (k - 9) * 20;
    t.push(now, k, k * 160, 7, pcmAt(k * 160));
    t.tick(now);
  }
  assert.equal(t.stats.rebased, 1);
  const heard = frames.filter((f) => !f.concealed).map((f) => f.samples[0]);
  assert.ok(heard.includes(pcmAt(39 * 160)[0]), 'the stream plays again');
  frames.forEach((f, i) => assert.equal(f.timestamp, i * 160));
});

test('timestamp jumps that add up past half the 32-bit clock never make a held packet look hours ahead', () => {
  const { t, frames } = setup(40);
  t.push(0, 100, 0, 7, pcmAt(0));
  // A gap: packet 102 is held for the reorder window, 101 never comes.
  t.push(5, 102, 320, 7, pcmAt(320));
  // Two jumps of 1.4e9 samples each (a crafted or broken stream), both restarting the clock.
  t.push(10, 110, 1_400_000_000, 7, pcmAt(0));
  t.push(15, 120, 2_800_000_000, 7, pcmAt(0));
  const before = frames.length;
  t.tick(1000);
  assert.ok(frames.length - before <= 60, `${frames.length - before} frames from one tick`);
});

test('after reset the next packet starts the stream live: no catch-up for the time nobody listened', () => {
  const { t, frames } = setup(40);
  for (let k = 0; k < 5; k++) t.push(k * 20, 100 + k, k * 160, 7, pcmAt(k * 160));
  t.reset();
  const before = frames.length;
  // Ten seconds later: nobody ticked or pushed in between.
  t.push(10_100, 600, 500 * 160, 7, pcmAt(500 * 160));
  t.tick(10_100);
  t.tick(10_120);
  assert.ok(frames.length - before <= 2, `${frames.length - before} frames`);
});
