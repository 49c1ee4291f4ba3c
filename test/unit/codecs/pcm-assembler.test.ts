import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PcmAssembler } from '../../../src/codecs/pcm-assembler.ts';

/** Little-endian 16-bit samples, read one byte pair at a time. */
function reference(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < bytes.length; i += 2) out.push((bytes[i]! | (bytes[i + 1]! << 8)) << 16 >> 16);
  return out;
}

test('chunks of any size, at even and odd offsets of their buffers, give the stream’s samples in order', () => {
  let seed = 7;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const stream = Uint8Array.from({ length: 20_001 }, () => rand(256));
  // The chunks live inside a larger buffer at a shifting offset, as slices of a network read do.
  const backing = Buffer.alloc(stream.length + 64);
  const asm = new PcmAssembler();
  const got: number[] = [];
  for (let at = 0, shift = 0; at < stream.length; shift = (shift + 1) % 7) {
    const size = Math.min(stream.length - at, 1 + rand(3300));
    const chunk = backing.subarray(shift + 1, shift + 1 + size);
    chunk.set(stream.subarray(at, at + size));
    const pcm = asm.push(chunk);
    // The samples are the caller's: the chunk's memory is reused next turn.
    chunk.fill(0xaa);
    got.push(...pcm);
    at += size;
  }
  assert.deepEqual(got, reference(stream));
});

test('the samples returned are a copy: the message they came from may be reused', () => {
  const chunk = Buffer.from([0x01, 0x80, 0xff, 0x7f]);
  const pcm = new PcmAssembler().push(chunk);
  chunk.fill(0);
  assert.deepEqual([...pcm], [-32767, 32767]);
});
