import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isRtcp, SrtpSession } from '../../../src/rtp-bridge/srtp/context.ts';
import { SRTP_SUITES, SUITE_PARAMS, type SrtpSuite } from '../../../src/rtp-bridge/srtp/suites.ts';
import { MediaError } from '../../../src/errors/media-error.ts';

function rtp(seq: number, ssrc = 0x11223344, payload: Buffer = randomBytes(160)): Buffer {
  const p = Buffer.alloc(12 + payload.length);
  p[0] = 0x80;
  p.writeUInt16BE(seq & 0xffff, 2);
  p.writeUInt32BE((seq * 160) >>> 0, 4);
  p.writeUInt32BE(ssrc >>> 0, 8);
  payload.copy(p, 12);
  return p;
}

function pair(suite: SrtpSuite): { tx: SrtpSession; rx: SrtpSession; key: Buffer; salt: Buffer } {
  const p = SUITE_PARAMS[suite];
  const key = randomBytes(p.keyLength);
  const salt = randomBytes(p.saltLength);
  return { tx: new SrtpSession(suite, key, salt), rx: new SrtpSession(suite, key, salt), key, salt };
}

const isInvalidArgument = (pattern: RegExp) => (err: unknown): boolean => {
  assert.ok(err instanceof MediaError, `not a MediaError: ${String(err)}`);
  assert.equal(err.code, 'invalid_argument');
  assert.match(err.message, pattern);
  return true;
};

for (const suite of SRTP_SUITES) {
  const tagLength = SUITE_PARAMS[suite].tagLength;

  test(`${suite}: round trip; header in the clear, payload encrypted, tag appended`, () => {
    const { tx, rx } = pair(suite);
    for (let seq = 100; seq < 200; seq++) {
      const p = rtp(seq);
      const s = tx.protect(p);
      assert.equal(s.length, p.length + tagLength);
      assert.deepEqual(s.subarray(0, 12), p.subarray(0, 12));
      assert.notDeepEqual(s.subarray(12, p.length), p.subarray(12));
      assert.deepEqual(rx.unprotect(s), p);
    }
    assert.equal(rx.authFailures, 0);
    assert.equal(rx.replays, 0);
  });

  test(`${suite}: a flipped bit anywhere in header, payload or tag is dropped and counted`, () => {
    const { tx, rx } = pair(suite);
    const s = tx.protect(rtp(7, 0x11223344, randomBytes(40)));
    let flips = 0;
    for (let at = 0; at < s.length; at++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = Buffer.from(s);
        bad[at]! ^= 1 << bit;
        assert.equal(rx.unprotect(bad), null, `bit ${bit} of byte ${at}`);
        flips++;
      }
    }
    assert.equal(rx.authFailures, flips);
    assert.equal(rx.replays, 0);
    assert.ok(rx.unprotect(s), 'forgeries did not advance the stream state');
  });

  test(`${suite}: replay is dropped; reordering inside the 64-packet window is accepted once`, () => {
    const { tx, rx } = pair(suite);
    const ps = new Map<number, Buffer>();
    for (let seq = 900; seq <= 1000; seq++) ps.set(seq, tx.protect(rtp(seq)));
    assert.ok(rx.unprotect(ps.get(1000)!));
    assert.equal(rx.unprotect(ps.get(1000)!), null, 'the same packet again');
    assert.equal(rx.replays, 1);
    assert.ok(rx.unprotect(ps.get(998)!), 'late, inside the window');
    assert.equal(rx.unprotect(ps.get(998)!), null, 'late and repeated');
    assert.ok(rx.unprotect(ps.get(937)!), 'the oldest index the window holds (1000 - 63)');
    assert.equal(rx.unprotect(ps.get(936)!), null, 'one older than the window');
    assert.equal(rx.replays, 3);
    assert.ok(rx.unprotect(ps.get(999)!));
    assert.equal(rx.authFailures, 0);
  });

  test(`${suite}: the window slides by more than 32 and more than 64 without losing bits`, () => {
    const { tx, rx } = pair(suite);
    const ps = new Map<number, Buffer>();
    for (let seq = 0; seq <= 300; seq++) ps.set(seq, tx.protect(rtp(seq)));
    for (const seq of [10, 12, 50, 90]) assert.ok(rx.unprotect(ps.get(seq)!), `seq ${seq}`);
    // 90 is highest: 50 (k = 40, upper half) and 12 are seen; 27 (k = 63) is new.
    assert.equal(rx.unprotect(ps.get(50)!), null);
    assert.ok(rx.unprotect(ps.get(27)!));
    assert.equal(rx.unprotect(ps.get(26)!), null);
    assert.ok(rx.unprotect(ps.get(95)!)); // shift by 5 moves bit 31 into the upper half
    assert.equal(rx.unprotect(ps.get(50)!), null);
    assert.ok(rx.unprotect(ps.get(80)!));
    assert.ok(rx.unprotect(ps.get(300)!)); // jump beyond the window
    assert.equal(rx.unprotect(ps.get(95)!), null);
    assert.ok(rx.unprotect(ps.get(299)!));
    assert.equal(rx.replays, 4);
  });

  test(`${suite}: sequence wrap 65530 -> 5 advances the rollover counter on both sides`, () => {
    const { tx, rx, key, salt } = pair(suite);
    let last: Buffer | null = null;
    for (let i = 65530; i < 65536 + 6; i++) {
      last = tx.protect(rtp(i));
      assert.deepEqual(rx.unprotect(last)?.subarray(2, 4), rtp(i).subarray(2, 4), `seq ${i & 0xffff}`);
    }
    // A receiver that never saw the wrap assumes ROC 0, so the ROC really is in the crypto.
    assert.equal(new SrtpSession(suite, key, salt).unprotect(last!), null);
    // A late packet from before the wrap is still placed at ROC 0.
    const { tx: tx2, rx: rx2 } = pair(suite);
    const before = [65533, 65534, 65535].map((s) => tx2.protect(rtp(s)));
    const after = [0, 1].map((s) => tx2.protect(rtp(s)));
    assert.ok(rx2.unprotect(before[0]!));
    assert.ok(rx2.unprotect(after[0]!));
    assert.ok(rx2.unprotect(after[1]!));
    assert.ok(rx2.unprotect(before[2]!), 'seq 65535 arriving after seq 1');
    assert.ok(rx2.unprotect(before[1]!));
    assert.equal(rx2.unprotect(before[1]!), null);
    assert.equal(rx2.authFailures, 0);
  });

  test(`${suite}: an SSRC change mid-stream, and back, keeps each stream's state`, () => {
    const { tx, rx } = pair(suite);
    const a = [1, 2, 3].map((s) => tx.protect(rtp(s, 0xaaaa)));
    const b = [40000, 40001].map((s) => tx.protect(rtp(s, 0xbbbb)));
    assert.ok(rx.unprotect(a[0]!));
    assert.ok(rx.unprotect(a[1]!));
    assert.ok(rx.unprotect(b[0]!));
    assert.ok(rx.unprotect(b[1]!));
    assert.equal(rx.unprotect(a[1]!), null, 'replay on the first SSRC is still detected');
    assert.ok(rx.unprotect(a[2]!));
    assert.equal(rx.replays, 1);
  });

  test(`${suite}: CSRCs, header extension and padding: header authenticated in the clear, padding encrypted`, () => {
    const { tx, rx } = pair(suite);
    // V=2 P=1 X=1 CC=2; two CSRCs; a one-byte-header extension of 2 words; 5 payload bytes + 3 padding.
    const header = Buffer.from('b2 00 0102 00000010 cafebabe 00000001 00000002 bede0002 2212345610aa0000'.replace(/\s/g, ''), 'hex');
    const body = Buffer.from('0102030405 000003'.replace(/\s/g, ''), 'hex');
    const p = Buffer.concat([header, body]);
    const s = tx.protect(p);
    assert.deepEqual(s.subarray(0, header.length), header, 'CSRCs and extension stay readable');
    assert.notDeepEqual(s.subarray(header.length, p.length), body);
    assert.notDeepEqual(s.subarray(p.length - 3, p.length), body.subarray(5), 'the padding is encrypted too');
    assert.deepEqual(rx.unprotect(s), p);
    const tampered = Buffer.from(s);
    tampered[30]! ^= 0x40; // inside the header extension
    assert.equal(rx.unprotect(tampered), null);
  });

  test(`${suite}: malformed and random input is dropped, never thrown`, () => {
    const { rx } = pair(suite);
    let n = 0;
    for (let len = 0; len < 48; len++) {
      assert.equal(rx.unprotect(randomBytes(len)), null);
      const v2 = randomBytes(len);
      if (len > 0) v2[0] = 0x80 | (v2[0]! & 0x3f);
      assert.equal(rx.unprotect(v2), null);
      n += 2;
    }
    // A header extension claiming more words than the packet has.
    const ext = Buffer.from('9000000100000000000000aabede0fff'.padEnd(80, '0'), 'hex');
    assert.equal(rx.unprotect(ext), null);
    n++;
    assert.equal(rx.authFailures + rx.replays, n);
  });
}

test('the stream map is capped: the least recently used SSRC is evicted', () => {
  const { tx, rx } = pair('AES_CM_128_HMAC_SHA1_80');
  const first = new Map<number, Buffer>();
  for (let ssrc = 1; ssrc <= 17; ssrc++) {
    first.set(ssrc, tx.protect(rtp(10, ssrc)));
    if (ssrc === 17) assert.ok(rx.unprotect(tx.protect(rtp(9, 2))), 'SSRC 2 used again: now most recent');
    assert.ok(rx.unprotect(first.get(ssrc)!));
  }
  // 16 fit; the 17th evicted SSRC 1 (the oldest), not SSRC 2 (touched just before).
  assert.ok(rx.unprotect(first.get(1)!), 'SSRC 1 was forgotten, so its old packet is new to it');
  assert.equal(rx.unprotect(tx.protect(rtp(9, 2))), null, 'SSRC 2 still remembers seq 9');
  assert.equal(rx.unprotect(first.get(17)!), null, 'SSRC 17 still remembers seq 10');
});

test('a different key or suite fails every packet', () => {
  const { tx, key, salt } = pair('AES_CM_128_HMAC_SHA1_80');
  const other = pair('AES_CM_128_HMAC_SHA1_80').rx;
  const short = new SrtpSession('AES_CM_128_HMAC_SHA1_32', key, salt);
  for (let i = 0; i < 10; i++) {
    const s = tx.protect(rtp(i));
    assert.equal(other.unprotect(s), null);
    assert.equal(short.unprotect(s), null);
  }
  assert.equal(other.authFailures, 10);
  assert.equal(short.authFailures, 10);
});

test('bad keys and non-RTP input to protect are invalid_argument', () => {
  assert.throws(() => new SrtpSession('AES_CM_128_HMAC_SHA1_80', randomBytes(16), randomBytes(12)), isInvalidArgument(/AES_CM_128_HMAC_SHA1_80.*14-byte master salt/));
  assert.throws(() => new SrtpSession('AEAD_AES_256_GCM', randomBytes(16), randomBytes(12)), isInvalidArgument(/32-byte master key/));
  const { tx } = pair('AEAD_AES_128_GCM');
  assert.throws(() => tx.protect(Buffer.alloc(11, 0x80)), isInvalidArgument(/not an RTP/));
  assert.throws(() => tx.protect(Buffer.alloc(20)), isInvalidArgument(/not an RTP/));
});

test('isRtcp: RFC 5761 demultiplexing on the second byte', () => {
  const b = (second: number): Buffer => Buffer.from([0x80, second, 0, 0]);
  assert.equal(isRtcp(b(200)), true); // SR
  assert.equal(isRtcp(b(201)), true); // RR
  assert.equal(isRtcp(b(192)), true);
  assert.equal(isRtcp(b(223)), true);
  assert.equal(isRtcp(b(191)), false);
  assert.equal(isRtcp(b(224)), false);
  assert.equal(isRtcp(b(0x80 | 0)), false); // PCMU with the marker bit
  assert.equal(isRtcp(b(0x80 | 8)), false); // PCMA with the marker bit
  assert.equal(isRtcp(b(111)), false); // Opus, no marker
  assert.equal(isRtcp(Buffer.from([0x80])), false);
});

test('throughput: protect + unprotect of a 172-byte PCMU packet', (t) => {
  const n = 20000;
  for (const suite of SRTP_SUITES) {
    const { tx, rx } = pair(suite);
    const packet = rtp(0, 1);
    const run = (from: number, to: number): void => {
      for (let i = from; i < to; i++) {
        packet.writeUInt16BE(i & 0xffff, 2);
        if (!rx.unprotect(tx.protect(packet))) assert.fail(`${suite}: packet ${i} did not round-trip`);
      }
    };
    run(0, 2000); // warm up
    const start = process.hrtime.bigint();
    run(2000, 2000 + n);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    t.diagnostic(`${suite}: ${Math.round(n / seconds)} protect+unprotect pairs/s (${(seconds * 1e6 / n).toFixed(1)} µs per pair)`);
  }
});
