import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cadenceOf } from '../../../bench/lib/wire-cadence.ts';

/** A classic pcap (microseconds, Ethernet) of RTP packets: [ms since start, source port, sequence]. */
function pcap(packets: [number, number, number][]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(1, 20);
  const records = packets.map(([ms, port, seq]) => {
    const frame = Buffer.alloc(14 + 20 + 8 + 12);
    frame.writeUInt16BE(0x0800, 12);
    frame[14] = 0x45;
    frame.writeUInt16BE(port, 34);
    frame[42] = 0x80;
    frame.writeUInt16BE(seq, 44);
    const rec = Buffer.alloc(16);
    const us = Math.round(ms * 1000) + 1_000_000_000;
    rec.writeUInt32LE(Math.floor(us / 1e6), 0);
    rec.writeUInt32LE(us % 1e6, 4);
    rec.writeUInt32LE(frame.length, 8);
    rec.writeUInt32LE(frame.length, 12);
    return Buffer.concat([rec, frame]);
  });
  return Buffer.concat([head, ...records]);
}

test('wire cadence: intervals per stream between packets whose sequence numbers follow', () => {
  const packets: [number, number, number][] = [];
  // Stream A every 20 ms, one packet lost (no interval across it); stream B every 20 ms across a
  // sequence wrap, one packet 15 ms late.
  for (let k = 0; k < 100; k++) {
    if (k !== 50) packets.push([k * 20, 10000, 1000 + k]);
    packets.push([k * 20 + 3 + (k === 40 ? 15 : 0), 10002, (65500 + k) & 0xffff]);
  }
  packets.sort((x, y) => x[0] - y[0]);
  const c = cadenceOf(pcap(packets));
  assert.equal(c.packets, 199);
  assert.equal(c.streams, 2);
  // A: 97 intervals; B: 99, of which one is 35 ms and the next 5 ms.
  assert.equal(c.p50, 20);
  assert.ok(Math.abs(c.outOfSpec - 2 / 196) < 1e-9, `out of spec ${c.outOfSpec}`);
});
