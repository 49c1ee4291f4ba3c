import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OpusFrameEncoder } from '../../../src/codecs/opus.ts';
import { OpusPlayout } from '../../../src/rooms/opus-playout.ts';
import { audioLevel } from '../../../src/rooms/opus-send-leg.ts';

const FRAME = 160;

/** Frame k of a 440 Hz tone whose amplitude encodes k, so the order of frames is visible. */
function frames(n: number): Int16Array[] {
  const out: Int16Array[] = [];
  for (let k = 0; k < n; k++) {
    const f = new Int16Array(FRAME);
    for (let i = 0; i < FRAME; i++) f[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (k * FRAME + i)) / 8000));
    out.push(f);
  }
  return out;
}

function packets(n: number): Buffer[] {
  const enc = new OpusFrameEncoder({ sampleRate: 8000, complexity: 5 });
  return frames(n).map((f) => enc.encode(f));
}

function play(p: OpusPlayout, ticks: number): { out: Int16Array[]; active: number } {
  const out: Int16Array[] = [];
  let active = 0;
  for (let t = 0; t < ticks; t++) {
    const acc = new Int32Array(FRAME);
    if (p.mixInto(acc)) active++;
    out.push(Int16Array.from(acc));
  }
  return { out, active };
}

test('waits for its playout delay, then plays one frame per tick, in order', () => {
  const p = new OpusPlayout({ delayMs: 40 });
  const pk = packets(10);
  p.push(1, 100, pk[0]!);
  assert.equal(play(p, 1).active, 0, 'one packet is below the 40 ms delay');
  let active = 0;
  for (let k = 1; k < 10; k++) {
    p.push(1, 100 + k, pk[k]!);
    active += play(p, 1).active;
  }
  active += play(p, 3).active;
  assert.equal(active, 10);
  assert.equal(p.stats.concealed, 0);
  assert.equal(p.stats.skipped, 0);
  assert.equal(p.stats.underruns, 1, 'running dry after the last packet counts one underrun');
});

test('reordered packets are put back in order; a lost one is concealed, a late one dropped', () => {
  const p = new OpusPlayout({ delayMs: 40 });
  const pk = packets(8);
  const arrival = [0, 2, 1, 3, 5, 6, 7]; // 4 is lost, 1 and 2 swapped
  let active = 0;
  for (const k of arrival) {
    p.push(7, 500 + k, pk[k]!);
    active += play(p, 1).active;
  }
  active += play(p, 2).active;
  assert.equal(active, 8);
  assert.equal(p.stats.concealed, 1);
  p.push(7, 504, pk[4]!);
  assert.equal(p.stats.late, 1);
});

test('a burst after a stall is cut back to the playout delay instead of adding latency', () => {
  const p = new OpusPlayout({ delayMs: 40 });
  const pk = packets(30);
  for (let k = 0; k < 20; k++) p.push(3, k, pk[k]!);
  assert.equal(play(p, 1).active, 1);
  assert.equal(p.stats.skipped, 17, "of 20 queued, the playout delay (2) and the frame played (1) remain");
  let active = 0;
  for (let k = 20; k < 30; k++) {
    p.push(3, k, pk[k]!);
    active += play(p, 1).active;
  }
  assert.equal(active, 10);
  assert.equal(p.stats.skipped, 17, 'steady arrival skips nothing more');
});

test('a sequence wrap and a new SSRC do not confuse it; the queue is bounded', () => {
  const p = new OpusPlayout({ delayMs: 20 });
  const pk = packets(60);
  p.push(1, 65534, pk[0]!);
  p.push(1, 65535, pk[1]!);
  p.push(1, 0, pk[2]!);
  assert.equal(play(p, 3).active, 3);
  assert.equal(p.stats.concealed, 0);
  p.push(2, 9000, pk[3]!);
  assert.equal(play(p, 1).active, 1, 'a new stream plays at once');
  for (let k = 0; k < 60; k++) p.push(2, 9001 + k, pk[k]!);
  assert.equal(p.stats.overflow, 10, 'at most 50 packets wait');
});

test('a corrupt packet is counted and heard as silence, not thrown', () => {
  const p = new OpusPlayout({ delayMs: 20 });
  p.push(1, 1, Buffer.from([0xff, 0xff, 0xff]));
  const { active } = play(p, 1);
  assert.equal(active, 1);
  assert.equal(p.stats.corrupt, 1);
});

test('the audio level is -dBov of the frame', () => {
  assert.equal(audioLevel(new Int16Array(FRAME)), 127);
  const full = new Int16Array(FRAME).fill(32767);
  assert.equal(audioLevel(full), 0);
  const tone = frames(1)[0]!; // amplitude 8000: RMS 5657 = -15.2 dBov
  assert.equal(audioLevel(tone), 15);
});

test('a sender 2 % fast loses a quiet frame now and then; the delay does not grow', () => {
  const p = new OpusPlayout({ delayMs: 40 });
  const enc = new OpusFrameEncoder({ sampleRate: 8000, complexity: 5 });
  // Speech-like: 400 ms of tone, 200 ms of silence.
  const tone = frames(1)[0]!;
  const silent = new Int16Array(FRAME);
  let seq = 0;
  let sent = 0;
  let maxQueued = 0;
  for (let tick = 0; tick < 1500; tick++) {
    // 51 packets every 50 ticks.
    const due = Math.floor(((tick + 1) * 51) / 50);
    while (sent < due) {
      p.push(9, seq++ & 0xffff, enc.encode(sent % 30 < 20 ? tone : silent));
      sent++;
    }
    p.mixInto(new Int32Array(FRAME));
    maxQueued = Math.max(maxQueued, p.queued);
  }
  // 30 seconds at 2 % is 30 frames too many: each was dropped, none piled up.
  assert.ok(p.stats.skipped >= 25 && p.stats.skipped <= 35, `skipped ${p.stats.skipped}`);
  assert.ok(maxQueued <= 4, `at most a few frames waited (${maxQueued})`);
  assert.equal(p.stats.underruns, 0);
});
