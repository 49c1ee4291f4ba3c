import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { SrtcpSession, deriveRtcpSessionKeys } from '../../../src/rtp-bridge/srtp/srtcp.ts';
import { SRTP_SUITES, SUITE_PARAMS, type SrtpSuite } from '../../../src/rtp-bridge/srtp/suites.ts';
import { buildRtcp } from '../../../src/quality/rtcp-writer.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');

// RFC 7714 section 17 (SRTCP): session keys given directly, SSRC "Mars", SRTCP index 0x5d4.
const GCM_SALT = hex('517569642070726f2071756f');
const RTCP = hex('81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef');
const SSRC = 0x4d617273;

/** A session whose next index (sending) is 0x5d4, as in the RFC's vectors. */
function rfcSession(suite: 'AEAD_AES_128_GCM' | 'AEAD_AES_256_GCM', key: string): SrtcpSession {
  const s = SrtcpSession.fromSessionKeys(suite, { cipherKey: hex(key), cipherSalt: GCM_SALT, authKey: null });
  s.resume([{ ssrc: SSRC, index: 0x5d3 }], 0);
  return s;
}

test('RFC 7714 17.1: AEAD_AES_128_GCM SRTCP encryption and decryption', () => {
  const expected = hex(`81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d
    c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4`);
  assert.deepEqual(rfcSession('AEAD_AES_128_GCM', '000102030405060708090a0b0c0d0e0f').protect(RTCP), expected);
  const rx = SrtcpSession.fromSessionKeys('AEAD_AES_128_GCM', { cipherKey: hex('000102030405060708090a0b0c0d0e0f'), cipherSalt: GCM_SALT, authKey: null });
  assert.deepEqual(rx.unprotect(expected), RTCP);
});

test('RFC 7714 17.2: AEAD_AES_256_GCM SRTCP encryption and decryption', () => {
  const key = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
  const expected = hex(`81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d bffe0a50
    a2eaa5c1 110555be 8415f658 c61de047 6f1b6fad 1d1eb30c 4446839f 57ff6f6c b26ac3be 800005d4`);
  assert.deepEqual(rfcSession('AEAD_AES_256_GCM', key).protect(RTCP), expected);
  const rx = SrtcpSession.fromSessionKeys('AEAD_AES_256_GCM', { cipherKey: hex(key), cipherSalt: GCM_SALT, authKey: null });
  assert.deepEqual(rx.unprotect(expected), RTCP);
});

test('RFC 7714 17.3: AEAD_AES_128_GCM SRTCP authenticated but not encrypted (E flag clear) is read', () => {
  const packet = Buffer.concat([RTCP, hex('841dd968 3dd78ec9 2ae58790 125f62b3 000005d4')]);
  const rx = SrtcpSession.fromSessionKeys('AEAD_AES_128_GCM', { cipherKey: hex('000102030405060708090a0b0c0d0e0f'), cipherSalt: GCM_SALT, authKey: null });
  assert.deepEqual(rx.unprotect(packet), RTCP);
  // The same bytes with the E flag set claim encryption: the tag no longer verifies.
  const flagged = Buffer.from(packet);
  flagged[flagged.length - 4]! |= 0x80;
  assert.equal(SrtcpSession.fromSessionKeys('AEAD_AES_128_GCM', { cipherKey: hex('000102030405060708090a0b0c0d0e0f'), cipherSalt: GCM_SALT, authKey: null }).unprotect(flagged), null);
});

/** The AES-CM PRF block by block with AES-ECB (RFC 3711 4.3.3), apart from the code under test. */
function prf(masterKey: Buffer, masterSalt: Buffer, label: number, length: number): Buffer {
  const x = Buffer.concat([masterSalt, Buffer.alloc(2)]);
  x[7]! ^= label;
  const blocks: Buffer[] = [];
  for (let i = 0; i * 16 < length; i++) {
    const ctr = Buffer.from(x);
    ctr.writeUInt16BE(i, 14);
    const ecb = createCipheriv('aes-128-ecb', masterKey, null);
    ecb.setAutoPadding(false);
    blocks.push(ecb.update(ctr));
  }
  return Buffer.concat(blocks).subarray(0, length);
}

for (const suite of ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'] as const) {
  test(`${suite}: SRTCP by hand (RFC 3711 3.4 and 4.3.2): labels 3/4/5, IV from the index, E flag, an 80-bit tag`, () => {
    const masterKey = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
    const masterSalt = hex('0EC675AD498AFEEBB6960B3AABE6');
    const keys = deriveRtcpSessionKeys(suite, masterKey, masterSalt);
    assert.deepEqual(keys.cipherKey, prf(masterKey, masterSalt, 3, 16));
    assert.deepEqual(keys.authKey, prf(masterKey, masterSalt, 4, 20));
    assert.deepEqual(keys.cipherSalt, prf(masterKey, masterSalt, 5, 14));
    const tx = new SrtcpSession(suite, masterKey, masterSalt);
    const rtcp = buildRtcp({ ssrc: 0xdecafbad, sender: { ntpSec: 1, ntpFrac: 2, rtpTimestamp: 3, packets: 4, octets: 5 }, blocks: [], cname: 'media@example' });
    tx.protect(rtcp);
    tx.protect(rtcp);
    const third = tx.protect(rtcp); // index 2
    const iv = Buffer.concat([keys.cipherSalt, Buffer.alloc(2)]);
    iv.writeUInt32BE((iv.readUInt32BE(4) ^ 0xdecafbad) >>> 0, 4);
    iv.writeUInt32BE((iv.readUInt32BE(10) ^ 2) >>> 0, 10);
    const enc = createCipheriv('aes-128-ctr', keys.cipherKey, iv).update(rtcp.subarray(8));
    const body = Buffer.concat([rtcp.subarray(0, 8), enc, hex('80000002')]);
    const tag = createHmac('sha1', keys.authKey!).update(body).digest().subarray(0, 10);
    assert.deepEqual(third, Buffer.concat([body, tag]));
    const rx = new SrtcpSession(suite, masterKey, masterSalt);
    assert.deepEqual(rx.unprotect(third), rtcp);
  });
}

test('AES_CM_128_HMAC_SHA1_32: SRTCP tagged with 32 bits, as ffmpeg sends it, is read too; never on the _80 suite', () => {
  const masterKey = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
  const masterSalt = hex('0EC675AD498AFEEBB6960B3AABE6');
  const tx = new SrtcpSession('AES_CM_128_HMAC_SHA1_32', masterKey, masterSalt);
  const full = tx.protect(report());
  const short = full.subarray(0, full.length - 6);
  const rx = new SrtcpSession('AES_CM_128_HMAC_SHA1_32', masterKey, masterSalt);
  assert.deepEqual(rx.unprotect(short), report());
  assert.equal(rx.unprotect(short), null);
  assert.equal(rx.lastDropWasReplay, true);
  const next = tx.protect(report());
  const tampered = Buffer.from(next.subarray(0, next.length - 6));
  tampered[12]! ^= 0x40;
  assert.equal(rx.unprotect(tampered), null);
  assert.equal(rx.lastDropWasReplay, false);
  assert.equal(new SrtcpSession('AES_CM_128_HMAC_SHA1_80', masterKey, masterSalt).unprotect(short), null);
});

const keyOf = (suite: SrtpSuite): [Buffer, Buffer] => [randomBytes(SUITE_PARAMS[suite].keyLength), randomBytes(SUITE_PARAMS[suite].saltLength)];
const report = (ssrc = 0x1234): Buffer => buildRtcp({ ssrc, blocks: [{ ssrc: 9, fractionLost: 0.1, cumulativeLost: 3, extendedHighestSeq: 77, jitter: 12, lsr: 0, dlsr: 0 }], cname: 'c@x' });

for (const suite of SRTP_SUITES) {
  test(`${suite}: a flipped byte anywhere is refused and counted as not authentic; a replay as a replay; neither moves the window`, () => {
    const [k, s] = keyOf(suite);
    const tx = new SrtcpSession(suite, k, s);
    const rx = new SrtcpSession(suite, k, s);
    const packets = Array.from({ length: 5 }, () => tx.protect(report()));
    assert.equal(packets[0]!.length, report().length + 4 + (SUITE_PARAMS[suite].aead ? 16 : 10));
    assert.notDeepEqual(packets[0]!.subarray(8, report().length), report().subarray(8), 'the body is encrypted');
    for (let i = 0; i < packets[0]!.length; i++) {
      const bad = Buffer.from(packets[0]!);
      bad[i]! ^= 0x01;
      assert.equal(rx.unprotect(bad), null, `byte ${i} flipped was accepted`);
      assert.equal(rx.lastDropWasReplay, false);
    }
    assert.equal(rx.authFailures, packets[0]!.length);
    assert.deepEqual(rx.unprotect(packets[0]!), report(), 'forgeries did not spoil the stream');
    assert.deepEqual(rx.unprotect(packets[2]!), report());
    assert.equal(rx.unprotect(packets[2]!), null);
    assert.equal(rx.lastDropWasReplay, true);
    assert.equal(rx.unprotect(packets[0]!), null);
    assert.equal(rx.replays, 2);
    // Reordered inside the window: accepted once.
    assert.deepEqual(rx.unprotect(packets[1]!), report());
    assert.deepEqual(rx.unprotect(packets[4]!), report());
    assert.deepEqual(rx.unprotect(packets[3]!), report());
    // A forged packet claiming a far higher index, with a bad tag, does not move the window.
    const forged = Buffer.from(tx.protect(report()));
    const at = SUITE_PARAMS[suite].aead ? forged.length - 4 : forged.length - 14;
    forged.writeUInt32BE((0x80000000 | 100000) >>> 0, at);
    assert.equal(rx.unprotect(forged), null);
    assert.equal(rx.lastDropWasReplay, false);
    assert.deepEqual(rx.unprotect(tx.protect(report())), report(), 'the next real packet still reads');
  });

  test(`${suite}: malformed and random input is dropped and counted, never thrown`, () => {
    const [k, s] = keyOf(suite);
    const rx = new SrtcpSession(suite, k, s);
    const inputs = [Buffer.alloc(0), Buffer.alloc(7), Buffer.from([0x80, 200]), randomBytes(40), Buffer.concat([hex('81c80006'), randomBytes(60)]), hex('00c8000100000000' + '00'.repeat(30))];
    for (let i = 0; i < 500; i++) inputs.push(Buffer.concat([hex('80c9'), randomBytes(Math.floor(Math.random() * 80))]));
    for (const b of inputs) assert.equal(rx.unprotect(b), null);
    assert.equal(rx.authFailures, inputs.length);
  });

  test(`${suite}: another key refuses every packet; each SSRC has its own index and window`, () => {
    const [k, s] = keyOf(suite);
    const tx = new SrtcpSession(suite, k, s);
    const other = new SrtcpSession(suite, ...keyOf(suite));
    const rx = new SrtcpSession(suite, k, s);
    for (let i = 0; i < 3; i++) assert.equal(other.unprotect(tx.protect(report(1))), null);
    const a = tx.protect(report(1));
    const b = tx.protect(report(2));
    const wordAt = (p: Buffer): number => (SUITE_PARAMS[suite].aead ? p.length - 4 : p.length - 14);
    assert.equal(a.readUInt32BE(wordAt(a)), 0x80000003, 'SSRC 1 is on its fourth packet');
    assert.equal(b.readUInt32BE(wordAt(b)), 0x80000000, 'SSRC 2 starts at index 0');
    assert.deepEqual(rx.unprotect(b), report(2));
    assert.deepEqual(rx.unprotect(a), report(1));
  });

  test(`${suite}: the index goes on after a restart: the receiver refuses what it saw, the sender never reuses an index`, () => {
    const [k, s] = keyOf(suite);
    const tx = new SrtcpSession(suite, k, s);
    const rx = new SrtcpSession(suite, k, s);
    const sent = Array.from({ length: 4 }, () => tx.protect(report()));
    for (const p of sent) assert.ok(rx.unprotect(p));
    const tx2 = new SrtcpSession(suite, k, s);
    tx2.resume(tx.streams(), 2);
    const rx2 = new SrtcpSession(suite, k, s);
    rx2.resume(rx.streams());
    for (const p of sent) assert.equal(rx2.unprotect(p), null, 'a replay after the restart was accepted');
    assert.equal(rx2.replays, sent.length);
    const next = tx2.protect(report());
    const at = SUITE_PARAMS[suite].aead ? next.length - 4 : next.length - 14;
    assert.equal(next.readUInt32BE(at), (0x80000000 | 6) >>> 0, 'index 3 was the last, 2 skipped for what the old process may have sent');
    assert.deepEqual(rx2.unprotect(next), report());
    assert.deepEqual(rx.unprotect(next), report());
  });
}

test('protect refuses what is not RTCP (the service\'s own packets; never attacker input)', () => {
  const tx = new SrtcpSession('AES_CM_128_HMAC_SHA1_80', ...keyOf('AES_CM_128_HMAC_SHA1_80'));
  assert.throws(() => tx.protect(Buffer.alloc(4)), /not an RTCP/);
  assert.throws(() => tx.protect(Buffer.alloc(12)), /not an RTCP/);
});
