import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BridgeFeed, FEED_MAX_FRAMES, JITTER_MARGIN_MS } from '../../../src/bridge/bridge-feed.ts';
import { RtpClockMapper } from '../../../src/rtp-bridge/opus-leg.ts';

const frame = (v: number, concealed = false) => ({ samples: new Int16Array(160).fill(v), timestamp: 0, concealed });

/** A feed on a fake clock: frames arrive `phase` ms before each 20 ms tick. */
function harness(phase: number) {
  let now = 0;
  const feed = new BridgeFeed({ now: () => now });
  const take = (): number | null => {
    const acc = new Int32Array(160);
    return feed.mixInto(acc) ? acc[0]! : null;
  };
  /** One period: optionally a frame arrives (at `phase` ms before the tick, or `late` ms after it), then the tick. */
  const period = (v: number | null, opts: { late?: number; concealed?: boolean } = {}): number | null => {
    const tickAt = now + 20;
    if (v !== null && opts.late === undefined) {
      now = tickAt - phase;
      feed.push(frame(v, opts.concealed));
    }
    now = tickAt;
    const out = take();
    if (v !== null && opts.late !== undefined) {
      now = tickAt + opts.late;
      feed.push(frame(v, opts.concealed));
      now = tickAt;
    }
    return out;
  };
  return { feed, take, period, push: (v: number) => feed.push(frame(v)), advance: (ms: number) => (now += ms) };
}

test('with room for jitter, each frame plays at the first tick after it arrived', () => {
  const h = harness(JITTER_MARGIN_MS + 2);
  assert.deepEqual([h.period(1000), h.period(2000), h.period(3000)], [1000, 2000, 3000]);
  assert.equal(h.period(null), null);
  assert.equal(h.feed.stats.underruns, 1, 'an empty tick right after speech is an underrun');
  assert.equal(h.period(null), null);
  assert.equal(h.feed.stats.underruns, 1, 'silence after it is not');
});

test('a frame that arrives just before the tick starts playout a frame later, once', () => {
  const h = harness(2);
  const out = [1, 2, 3, 4, 5].map((k) => h.period(k * 1000));
  assert.deepEqual(out, [null, 1000, 2000, 3000, 4000]);
  // The cushion absorbs a packet up to a frame late without a gap.
  assert.equal(h.period(6000, { late: 10 }), 5000);
  assert.equal(h.period(7000), 6000);
  assert.equal(h.feed.stats.underruns, 0);
});

test('a late packet without a cushion is an underrun; the cushion it leaves absorbs the next', () => {
  const h = harness(JITTER_MARGIN_MS + 2);
  assert.equal(h.period(1000), 1000);
  assert.equal(h.period(2000, { late: 3 }), null);
  assert.equal(h.feed.stats.underruns, 1);
  assert.deepEqual([h.period(3000), h.period(4000, { late: 5 }), h.period(5000)], [2000, 3000, 4000]);
  assert.equal(h.feed.stats.underruns, 1);
});

test('concealed frames keep their place but contribute nothing', () => {
  const h = harness(10);
  assert.deepEqual([h.period(1000), h.period(0, { concealed: true }), h.period(3000)], [1000, null, 3000]);
  assert.equal(h.feed.stats.underruns, 0);
});

test(`beyond ${FEED_MAX_FRAMES} frames the oldest is dropped and counted`, () => {
  const h = harness(10);
  for (let k = 1; k <= FEED_MAX_FRAMES + 2; k++) h.push(k * 100);
  assert.equal(h.feed.depth, FEED_MAX_FRAMES);
  assert.equal(h.feed.stats.dropped, 2);
  h.advance(10);
  assert.equal(h.take(), 300);
  // Dropped concealment is not audio lost.
  const g = new BridgeFeed();
  for (let k = 0; k < 10; k++) g.push(frame(0, true));
  assert.equal(g.stats.dropped, 0);
});

test('a cushion left by a late packet is trimmed after three calm seconds, on a quiet frame', () => {
  const h = harness(JITTER_MARGIN_MS + 4);
  h.period(500);
  h.period(500, { late: 2 });
  assert.equal(h.feed.depth, 1);
  let played = 0;
  // The first window still holds the late frame's short wait; the second is all calm.
  for (let k = 0; k < 290; k++) if (h.period(k % 10 === 9 ? 1 : 500) !== null) played++;
  assert.equal(h.feed.depth, 1, 'the cushion is kept for a while');
  for (let k = 0; k < 30; k++) if (h.period(k % 10 === 9 ? 1 : 500) !== null) played++;
  assert.equal(h.feed.depth, 0, 'the queue is back to nothing waiting');
  assert.equal(h.feed.stats.trimmed, 1);
  assert.equal(played, 320, 'no tick went silent: a quiet frame was skipped instead');
});

test('no trim while the delay is needed: a cushion chosen at start-up stays', () => {
  const h = harness(2);
  for (let k = 0; k < 1200; k++) h.period(500);
  assert.equal(h.feed.stats.trimmed, 0);
  assert.equal(h.feed.depth, 1);
});

test('48 kHz timestamps map onto the 8 kHz clock consistently, across wrap and SSRC changes', () => {
  const m = new RtpClockMapper(48000, 8000);
  const start = 0xffffffff - 960 * 3 + 1;
  const out = Array.from({ length: 8 }, (_, k) => m.map((start + k * 960) >>> 0, 7));
  for (let k = 1; k < out.length; k++) assert.equal((out[k]! - out[k - 1]!) >>> 0, 160, `step ${k}`);
  // A reordered (older) packet maps where it belongs; a repeat maps the same.
  assert.equal(m.map((start + 2 * 960) >>> 0, 7), out[2]);
  assert.equal(m.map((start + 7 * 960) >>> 0, 7), out[7]);
  // 10 ms packets and odd offsets round to the nearest 8 kHz sample.
  const base = m.map((start + 8 * 960) >>> 0, 7);
  assert.equal((m.map((start + 8 * 960 + 480) >>> 0, 7) - base) >>> 0, 80);
  assert.equal((m.map((start + 8 * 960 + 5) >>> 0, 7) - base) >>> 0, 1);
  // A new SSRC starts its own mapping.
  const other = m.map(12345, 9);
  assert.equal((m.map(12345 + 960, 9) - other) >>> 0, 160);
  // Hours of stream: the base follows, so distances never overflow.
  let ts = 1000;
  let prev = m.map(ts, 11);
  for (let k = 0; k < 5000; k++) {
    ts = (ts + 960 * 1000) >>> 0;
    const v = m.map(ts, 11);
    assert.equal((v - prev) >>> 0, 160 * 1000);
    prev = v;
  }
});
