import { test } from 'node:test';
import assert from 'node:assert/strict';
import { audioLevel, LevelledRtp } from '../../../src/rooms/levelled-rtp.ts';

/** Read as RFC 3550 and RFC 8285 lay it out, independently of the writer. */
function read(p: Buffer) {
  const x = (p[0]! & 0x10) !== 0;
  const extLen = p.readUInt16BE(14) * 4;
  return {
    version: p[0]! >> 6,
    extension: x,
    marker: (p[1]! & 0x80) !== 0,
    pt: p[1]! & 0x7f,
    seq: p.readUInt16BE(2),
    ts: p.readUInt32BE(4),
    ssrc: p.readUInt32BE(8),
    profile: p.readUInt16BE(12),
    elementId: p[16]! >> 4,
    elementLen: (p[16]! & 0x0f) + 1,
    voice: (p[17]! & 0x80) !== 0,
    level: p[17]! & 0x7f,
    payload: p.subarray(16 + extLen),
  };
}

const tone = (amplitude: number): Int16Array => Int16Array.from({ length: 160 }, (_, i) => Math.round(amplitude * Math.sin((2 * Math.PI * 400 * i) / 8000)));

test('each packet carries the header, one audio level element and the payload', () => {
  const rtp = new LevelledRtp(0, 160);
  const payload = Uint8Array.from({ length: 160 }, (_, i) => i);
  const p = read(rtp.next(payload, tone(16384)));
  assert.equal(p.version, 2);
  assert.equal(p.extension, true);
  assert.equal(p.pt, 0);
  assert.equal(p.ssrc, rtp.ssrc);
  assert.equal(p.profile, 0xbede);
  assert.equal(p.elementId, 1);
  assert.equal(p.elementLen, 1);
  // A sine of half full scale: RMS 11585, 9 dB below full scale, and voice.
  assert.equal(p.level, 9);
  assert.equal(p.voice, true);
  assert.deepEqual([...p.payload], [...payload]);
  const quiet = read(rtp.next(payload, new Int16Array(160)));
  assert.equal(quiet.level, 127);
  assert.equal(quiet.voice, false);
});

test('time runs on through silence; the marker starts each talk spurt and sequence numbers count packets', () => {
  const rtp = new LevelledRtp(100, 960);
  const pcm = tone(1000);
  const payload = new Uint8Array(40);
  const a = read(rtp.next(payload, pcm));
  const b = read(rtp.next(payload, pcm));
  rtp.silent();
  rtp.silent();
  const c = read(rtp.next(payload, pcm));
  assert.deepEqual([a.marker, b.marker, c.marker], [true, false, true]);
  assert.equal(b.seq, (a.seq + 1) & 0xffff);
  assert.equal(c.seq, (b.seq + 1) & 0xffff);
  assert.equal(b.ts, (a.ts + 960) >>> 0);
  assert.equal(c.ts, (b.ts + 3 * 960) >>> 0);
  assert.equal(c.pt, 100);
});

test('sequence numbers and timestamps wrap as RTP counts them', () => {
  const rtp = new LevelledRtp(0, 160);
  const pcm = new Int16Array(160);
  const payload = new Uint8Array(160);
  let prev = read(rtp.next(payload, pcm));
  let wrapped = 0;
  // One full cycle of sequence numbers from wherever it started: exactly one wrap.
  for (let k = 0; k < 0x10000; k++) {
    const p = read(rtp.next(payload, pcm));
    assert.equal(p.seq, (prev.seq + 1) & 0xffff);
    assert.equal(p.ts, (prev.ts + 160) >>> 0);
    if (p.seq < prev.seq) wrapped++;
    prev = p;
  }
  assert.equal(wrapped, 1);
});

test('audio level is -dBov of the frame, 0 at full scale and 127 for silence', () => {
  assert.equal(audioLevel(new Int16Array(160).fill(-32768)), 0);
  assert.equal(audioLevel(new Int16Array(160)), 127);
  assert.equal(audioLevel(new Int16Array(160).fill(328)), 40);
  assert.equal(audioLevel(new Int16Array(0)), 127);
});
