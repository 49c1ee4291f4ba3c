import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseWav, readWavInfo } from '../../../src/codecs/wav.ts';
import { WavSpool } from '../../../src/recording/wav-spool.ts';

const frame = (n: number, from: number): Int16Array => Int16Array.from({ length: n }, (_, i) => ((from + i) % 60000) - 30000);

test('stereo frames are interleaved across block ends and flushes; the file holds every sample in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wav-spool-'));
  try {
    const spool = await WavSpool.create(join(dir, 'a.wav'), 8000, 2);
    const left: number[] = [];
    const right: number[] = [];
    // 3.5 s of 20 ms frames (a block holds 1 s), flushed every 37 frames: blocks end mid-frame.
    for (let k = 0; k < 175; k++) {
      const l = frame(160, k * 160);
      const r = frame(160, 7 + k * 160);
      left.push(...l);
      right.push(...r);
      spool.appendStereo(l, r, 1 << 20);
      if (k % 37 === 36) void spool.flush();
    }
    // A frame of an odd length, then mono-style interleaved samples appended as they are.
    spool.appendStereo(frame(3, 1), frame(3, 2), 1 << 20);
    left.push(...frame(3, 1));
    right.push(...frame(3, 2));
    spool.append(Int16Array.from([11, -11, 12, -12]), 1 << 20);
    left.push(11, 12);
    right.push(-11, -12);
    await spool.finish();
    const file = readFileSync(join(dir, 'a.wav'));
    const info = readWavInfo(file);
    assert.equal(info.channels, 2);
    assert.equal(info.dataLength, left.length * 4);
    assert.equal(spool.bytesWritten, left.length * 4);
    const pcm = parseWav(file);
    const expected = new Int16Array(left.length * 2);
    left.forEach((v, i) => {
      expected[2 * i] = v;
      expected[2 * i + 1] = right[i]!;
    });
    assert.deepEqual(pcm.samples, expected);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('what the disk has not taken yet is bounded: past the backlog frames are dropped and counted, and taken again once written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wav-spool-'));
  try {
    const spool = await WavSpool.create(join(dir, 'b.wav'), 8000, 1);
    const f = frame(160, 0);
    // A backlog of 5 frames (1600 bytes): the 6th and 7th are dropped.
    for (let k = 0; k < 7; k++) spool.append(f, 1600);
    assert.equal(spool.droppedBytes, 640);
    // Handed to the write but not yet written still counts.
    const written = spool.flush();
    spool.append(f, 1600);
    assert.equal(spool.droppedBytes, 960);
    await written;
    spool.append(f, 1600);
    assert.equal(spool.droppedBytes, 960);
    await spool.finish();
    assert.equal(readWavInfo(readFileSync(join(dir, 'b.wav'))).dataLength, 6 * 320);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
