import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRtcp } from '../../../src/quality/rtcp.ts';
import { RemoteReportsReader, type RemoteReports } from '../../../src/quality/remote-reports.ts';

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

/** An RTCP XR packet (RFC 3611) written by hand: a block of another type, then a VoIP metrics block (4.7). */
function xrWithVoip(aboutSsrc: number, opts: { unavailable?: boolean } = {}): Buffer {
  const other = Buffer.alloc(12); // a receiver reference time block (BT=4), two words of body
  other[0] = 4;
  other.writeUInt16BE(2, 2);
  const v = Buffer.alloc(36);
  v[0] = 7;
  v.writeUInt16BE(8, 2);
  v.writeUInt32BE(aboutSsrc, 4);
  v[8] = 13; // loss rate 13/256
  v[9] = 5; // discard rate
  v[10] = 128; // burst density 0.5
  v[11] = 3; // gap density
  v.writeUInt16BE(120, 12); // burst duration ms
  v.writeUInt16BE(4000, 14); // gap duration ms
  v.writeUInt16BE(85, 16); // round trip delay ms
  v.writeUInt16BE(110, 18); // end system delay ms
  v[20] = opts.unavailable ? 127 : 0xec; // signal level -20 dBm
  v[21] = opts.unavailable ? 127 : 0xb5; // noise level -75 dBm
  v[22] = opts.unavailable ? 127 : 30; // RERL
  v[23] = 16; // Gmin
  v[24] = opts.unavailable ? 127 : 82; // R factor
  v[25] = 127; // external R: unavailable
  v[26] = opts.unavailable ? 127 : 41; // MOS-LQ 4.1
  v[27] = opts.unavailable ? 127 : 39; // MOS-CQ 3.9
  v[28] = 0b11_11_0000; // PLC standard, adaptive jitter buffer
  v.writeUInt16BE(40, 30);
  v.writeUInt16BE(120, 32);
  v.writeUInt16BE(200, 34);
  const head = Buffer.alloc(8);
  head[0] = 0x80;
  head[1] = 207;
  head.writeUInt16BE((8 + other.length + v.length) / 4 - 1, 2);
  head.writeUInt32BE(0x11223344, 4);
  return Buffer.concat([head, other, v]);
}

test('RTCP XR: the VoIP metrics block is read field by field, other block types are stepped over', () => {
  const parsed = parseRtcp(xrWithVoip(0xcafe))!;
  assert.equal(parsed.length, 1);
  const xr = parsed[0]!;
  assert.equal(xr.type, 'xr');
  if (xr.type !== 'xr') return;
  assert.equal(xr.ssrc, 0x11223344);
  assert.deepEqual(xr.voip, [
    {
      ssrc: 0xcafe,
      lossRate: 13 / 256,
      discardRate: 5 / 256,
      burstDensity: 0.5,
      gapDensity: 3 / 256,
      burstDurationMs: 120,
      gapDurationMs: 4000,
      roundTripDelayMs: 85,
      endSystemDelayMs: 110,
      signalLevelDbm: -20,
      noiseLevelDbm: -75,
      rerlDb: 30,
      gmin: 16,
      rFactor: 82,
      extRFactor: null,
      mosLq: 4.1,
      mosCq: 3.9,
      plc: 'standard',
      jitterBuffer: { adaptive: true, nominalMs: 40, maxMs: 120, absMaxMs: 200 },
    },
  ]);
  const blank = parseRtcp(xrWithVoip(1, { unavailable: true }))![0]!;
  assert.ok(blank.type === 'xr');
  const m = blank.voip[0]!;
  assert.deepEqual([m.signalLevelDbm, m.noiseLevelDbm, m.rerlDb, m.rFactor, m.mosLq, m.mosCq], [null, null, null, null, null, null], '127 is "unavailable"');
});

test('RTCP XR: a block running past the packet is malformed, never read', () => {
  const b = xrWithVoip(1);
  b.writeUInt16BE(50, 8 + 12 + 2); // the VoIP block claims 50 words
  assert.equal(parseRtcp(b), null);
  assert.equal(parseRtcp(b.subarray(0, 10)), null);
});

test('the phone\'s XR VoIP metrics about the service\'s stream reach the remote figures; about another stream they do not', () => {
  const r = new RemoteReportsReader();
  r.read(xrWithVoip(0x1234), 0, 0x9999);
  assert.ok(r.state.voip === null, 'a block about another stream was taken');
  r.read(Buffer.concat([rr(), xrWithVoip(0x9999)]), 0, 0x9999);
  const v = (r.state as RemoteReports).voip;
  assert.equal(v?.mosLq, 4.1);
  assert.equal(v?.burstDensity, 0.5);
  assert.equal(r.state.reports, 2);
  assert.equal(r.state.malformed, 0);
});

/** An empty RR: an XR travels in a compound packet after one (RFC 3550 6.1). */
function rr(): Buffer {
  const b = Buffer.alloc(8);
  b[0] = 0x80;
  b[1] = 201;
  b.writeUInt16BE(1, 2);
  b.writeUInt32BE(0x11223344, 4);
  return b;
}
