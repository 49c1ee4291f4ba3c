import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRtcp } from '../../../src/quality/rtcp.ts';

/** An SR with one report block, an SDES with a CNAME, and a BYE with a reason, written by hand from RFC 3550. */
function compound(): Buffer {
  const sr = Buffer.alloc(52);
  sr.writeUInt8(0x81, 0); // V=2, RC=1
  sr.writeUInt8(200, 1);
  sr.writeUInt16BE(52 / 4 - 1, 2);
  sr.writeUInt32BE(0x11223344, 4);
  sr.writeUInt32BE(3900000000, 8);
  sr.writeUInt32BE(0x80000000, 12);
  sr.writeUInt32BE(123456, 16);
  sr.writeUInt32BE(250, 20);
  sr.writeUInt32BE(40000, 24);
  sr.writeUInt32BE(0xcafe, 28); // report block about 0xcafe
  sr.writeUInt8(64, 32); // fraction lost 64/256
  sr.writeUIntBE(0xfffffe, 33, 3); // cumulative lost -2
  sr.writeUInt32BE(70000, 36);
  sr.writeUInt32BE(42, 40);
  sr.writeUInt32BE(0xabcd1234, 44);
  sr.writeUInt32BE(65536, 48);
  const cname = Buffer.from('phone@10.0.0.7');
  const sdesLen = Math.ceil((4 + 4 + 2 + cname.length + 1) / 4) * 4;
  const sdes = Buffer.alloc(sdesLen);
  sdes.writeUInt8(0x81, 0);
  sdes.writeUInt8(202, 1);
  sdes.writeUInt16BE(sdesLen / 4 - 1, 2);
  sdes.writeUInt32BE(0x11223344, 4);
  sdes.writeUInt8(1, 8);
  sdes.writeUInt8(cname.length, 9);
  cname.copy(sdes, 10);
  const reason = Buffer.from('hangup');
  const byeLen = Math.ceil((8 + 1 + reason.length) / 4) * 4;
  const bye = Buffer.alloc(byeLen);
  bye.writeUInt8(0x81, 0);
  bye.writeUInt8(203, 1);
  bye.writeUInt16BE(byeLen / 4 - 1, 2);
  bye.writeUInt32BE(0x11223344, 4);
  bye.writeUInt8(reason.length, 8);
  reason.copy(bye, 9);
  return Buffer.concat([sr, sdes, bye]);
}

test('a compound SR + SDES + BYE is read field by field', () => {
  const p = parseRtcp(compound())!;
  assert.equal(p.length, 3);
  assert.deepEqual(p[0], {
    type: 'sr',
    ssrc: 0x11223344,
    ntpSec: 3900000000,
    ntpFrac: 0x80000000,
    rtpTimestamp: 123456,
    packets: 250,
    octets: 40000,
    reports: [{ ssrc: 0xcafe, fractionLost: 0.25, cumulativeLost: -2, extendedHighestSeq: 70000, jitter: 42, lsr: 0xabcd1234, dlsr: 65536 }],
  });
  assert.deepEqual(p[1], { type: 'sdes', chunks: [{ ssrc: 0x11223344, cname: 'phone@10.0.0.7' }] });
  assert.deepEqual(p[2], { type: 'bye', ssrcs: [0x11223344], reason: 'hangup' });
});

test('truncated, wrong-version or overlong packets are not RTCP', () => {
  const c = compound();
  assert.equal(parseRtcp(c.subarray(0, 40)), null, 'a length past the datagram');
  const v1 = Buffer.from(c);
  v1[0] = 0x41;
  assert.equal(parseRtcp(v1), null);
  const rc = Buffer.from(c);
  rc[0] = 0x85; // claims 5 report blocks in 52 bytes
  assert.equal(parseRtcp(rc), null);
  assert.equal(parseRtcp(Buffer.alloc(0)), null);
  assert.deepEqual(parseRtcp(Buffer.from([0x80, 204, 0, 0])), [{ type: 'other', packetType: 204 }]);
});

test('random and mangled datagrams never throw', () => {
  const c = compound();
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 20000; i++) {
    const b = i % 2 ? Buffer.from(c) : Buffer.alloc(Math.floor(rnd() * 80));
    for (let k = 0; k < 1 + Math.floor(rnd() * 6); k++) if (b.length) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    if (b.length) b[0] = (b[0]! & 0x3f) | 0x80;
    assert.doesNotThrow(() => parseRtcp(i % 3 ? b : b.subarray(0, Math.floor(rnd() * b.length))));
  }
});

test('what the service writes reads back: SR with a block, SDES CNAME, BYE; an RR when it did not send', async () => {
  const { buildRtcp, ntpMiddle, ntpOf } = await import('../../../src/quality/rtcp-writer.ts');
  const ntp = ntpOf(Date.UTC(2026, 11, 4, 12, 0, 0, 500));
  assert.equal(ntp.sec, Math.floor(Date.UTC(2026, 11, 4, 12, 0, 0) / 1000) + 2208988800);
  assert.equal(ntp.frac, 2 ** 31);
  assert.equal(ntpMiddle(0x12345678, 0x9abcdef0), 0x56789abc);
  const b = buildRtcp({
    ssrc: 0xfeedface,
    sender: { ntpSec: ntp.sec, ntpFrac: ntp.frac, rtpTimestamp: 4242, packets: 99, octets: 15840 },
    blocks: [{ ssrc: 0x51ced, fractionLost: 0.05, cumulativeLost: 20, extendedHighestSeq: 65536 + 399, jitter: 92.4, lsr: 0x11112222, dlsr: 65536 * 1.5 }],
    cname: 'media-feedface@sentiric',
    bye: 'call ended',
  });
  assert.equal(b.length % 4, 0);
  const p = parseRtcp(b)!;
  assert.deepEqual(p.map((x) => x.type), ['sr', 'sdes', 'bye']);
  const sr = p[0] as Extract<(typeof p)[number], { type: 'sr' }>;
  assert.equal(sr.packets, 99);
  assert.deepEqual(sr.reports[0], { ssrc: 0x51ced, fractionLost: 12 / 256, cumulativeLost: 20, extendedHighestSeq: 65935, jitter: 92, lsr: 0x11112222, dlsr: 98304 });
  assert.deepEqual(p[1], { type: 'sdes', chunks: [{ ssrc: 0xfeedface, cname: 'media-feedface@sentiric' }] });
  assert.deepEqual(p[2], { type: 'bye', ssrcs: [0xfeedface], reason: 'call ended' });
  const rr = parseRtcp(buildRtcp({ ssrc: 1, blocks: [], cname: 'x' }))!;
  assert.deepEqual(rr[0], { type: 'rr', ssrc: 1, reports: [] });
});
