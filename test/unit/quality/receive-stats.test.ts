import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReceiveStats } from '../../../src/quality/receive-stats.ts';
import { CODEC_IMPAIRMENT, mosFromR, rFactor } from '../../../src/quality/e-model.ts';

test('loss from the extended sequence number, across the 16-bit wrap; duplicates and reordering counted as RFC 3550 does', () => {
  const s = new ReceiveStats(8000);
  let ts = 1000;
  const seqs: number[] = [];
  for (let k = 0; k < 300; k++) seqs.push((65400 + k) & 0xffff);
  const lost = new Set([10, 11, 150, 151, 152, 200]);
  seqs.forEach((seq, k) => {
    ts += 160;
    if (!lost.has(k)) s.packet(0xabc, seq, ts, k * 20);
  });
  assert.equal(s.expected, 300);
  assert.equal(s.received, 294);
  assert.equal(s.lost, 6);
  // The pattern: three runs (2, 3 and 1 packets long).
  assert.equal(s.lossBursts, 3);
  assert.equal(s.longestLossBurst, 3);
  assert.ok(Math.abs(s.lossRatio - 0.02) < 1e-9);
  // A duplicate and a late packet: received grows, expected does not.
  s.packet(0xabc, seqs[299]!, ts, 6000);
  s.packet(0xabc, seqs[10]!, 1000 + 11 * 160, 6010);
  assert.equal(s.expected, 300);
  assert.equal(s.lost, 4);
  assert.equal(s.takeIntervalLoss(), 4 / 300);
  assert.equal(s.takeIntervalLoss(), 0, 'nothing new since the last report');
});

test('interarrival jitter: zero for perfect pacing, the RFC 3550 estimate for known delays', () => {
  const perfect = new ReceiveStats(8000);
  for (let k = 0; k < 100; k++) perfect.packet(1, k, k * 160, 5 + k * 20);
  assert.equal(perfect.jitter, 0);
  // Alternating 0 and 10 ms extra delay: |D| is 80 ticks every packet, so J tends to 80 (10 ms).
  const alt = new ReceiveStats(8000);
  for (let k = 0; k < 400; k++) alt.packet(1, k, k * 160, k * 20 + (k % 2 ? 10 : 0));
  assert.ok(Math.abs(alt.jitterMs - 10) < 0.01, `${alt.jitterMs} ms`);
  // A timestamp that wraps at 2^32 is no jump in jitter.
  const wrap = new ReceiveStats(8000);
  for (let k = 0; k < 50; k++) wrap.packet(1, k, (0xffffff00 + k * 160) >>> 0, k * 20);
  assert.ok(wrap.jitter < 1e-6, `${wrap.jitter}`);
});

test('a sequence jump past 3000 is a restart, not loss; loss of earlier streams is kept', () => {
  const s = new ReceiveStats(8000);
  for (const k of [0, 1, 3]) s.packet(1, k, k * 160, k * 20);
  assert.equal(s.lost, 1);
  for (let k = 0; k < 5; k++) s.packet(1, 20000 + k, (10 + k) * 160, 200 + k * 20);
  assert.equal(s.expected, 5);
  assert.equal(s.lost, 0);
  assert.equal(s.lostAllStreams, 1);
});

test('a new SSRC starts the counts again', () => {
  const s = new ReceiveStats(8000);
  for (let k = 0; k < 10; k++) s.packet(1, k, k * 160, k * 20);
  for (let k = 0; k < 5; k++) s.packet(2, 40000 + k, k * 160, 200 + k * 20);
  assert.equal(s.ssrc, 2);
  assert.equal(s.expected, 5);
  assert.equal(s.received, 5);
});

test('E-model: a clean G.711 call scores above 4.2; loss lowers it as G.107 and G.113 say', () => {
  const clean = mosFromR(rFactor(CODEC_IMPAIRMENT.PCMU, 0, 60));
  const five = mosFromR(rFactor(CODEC_IMPAIRMENT.PCMU, 0.05, 60));
  assert.ok(clean >= 4.2, `clean ${clean}`);
  // Ie,eff at 5% with Bpl 25.1: 95 * 5 / 30.1 = 15.8 points of R.
  assert.ok(Math.abs(rFactor(CODEC_IMPAIRMENT.PCMU, 0, 60) - rFactor(CODEC_IMPAIRMENT.PCMU, 0.05, 60) - (95 * 5) / 30.1) < 1e-9);
  assert.ok(five < clean - 0.3 && five > 3.5, `5% loss ${five}`);
  assert.ok(mosFromR(rFactor(CODEC_IMPAIRMENT.PCMU, 0, 400)) < clean - 0.5, 'long delay hurts');
  assert.equal(mosFromR(-5), 1);
  assert.equal(mosFromR(120), 4.5);
});
