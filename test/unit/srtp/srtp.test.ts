import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { deriveSessionKey } from '../../../src/rtp-bridge/srtp/kdf.ts';
import { SrtpSession } from '../../../src/rtp-bridge/srtp/context.ts';
import { SRTP_SUITES, SUITE_PARAMS, type SrtpSuite } from '../../../src/rtp-bridge/srtp/suites.ts';
import { parseKeyParams, formatKeyParams, generateKeyParams, parseCryptoAttribute } from '../../../src/rtp-bridge/srtp/sdes.ts';
import { buildRtp } from '../../../src/rtp-bridge/rtp-packet.ts';
import { MediaError } from '../../../src/errors/media-error.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');

test('key derivation matches RFC 3711 appendix B.3', () => {
  const key = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
  const salt = hex('0EC675AD498AFEEBB6960B3AABE6');
  assert.equal(deriveSessionKey(key, salt, 0, 16).toString('hex').toUpperCase(), 'C61E7A93744F39EE10734AFE3FF7A087');
  assert.equal(deriveSessionKey(key, salt, 2, 14).toString('hex').toUpperCase(), '30CBBC08863D8C85D49DB34A9AE1');
  assert.equal(deriveSessionKey(key, salt, 1, 20).toString('hex').toUpperCase(), 'CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4');
});

test('AES_CM_128_HMAC_SHA1_80 packet matches the libsrtp reference vector byte for byte', () => {
  const key = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
  const salt = hex('0EC675AD498AFEEBB6960B3AABE6');
  const plain = hex('800f1234decafbad cafebabeabababab abababababababab abababab');
  const cipher = hex('800f1234decafbad cafebabe4e55dc4c e79978d88ca4d215 949d2402b78d6acc 99ea179b8dbb');
  assert.deepEqual(new SrtpSession('AES_CM_128_HMAC_SHA1_80', key, salt).protect(plain), cipher);
  assert.deepEqual(new SrtpSession('AES_CM_128_HMAC_SHA1_80', key, salt).unprotect(cipher), plain);
});

test('the AES-CM keystream is RFC 3711 appendix B.2', () => {
  // Session key 2B7E151628AED2A6ABF7158809CF4F3C, IV F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000.
  const c = createCipheriv('aes-128-ctr', hex('2B7E151628AED2A6ABF7158809CF4F3C'), hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000'));
  const ks = c.update(Buffer.alloc(48));
  assert.equal(ks.subarray(0, 16).toString('hex').toUpperCase(), 'E03EAD0935C95E80E166B16DD92B4EB4');
  assert.equal(ks.subarray(16, 32).toString('hex').toUpperCase(), 'D23513162B02D0F72A43A2FE4A5F97AB');
  assert.equal(ks.subarray(32, 48).toString('hex').toUpperCase(), '41E95B3BB0A2E8DD477901E4FCA894C0');
});

const packet = (seq: number, ssrc = 0x11223344, payload: Buffer = randomBytes(160), ts = seq * 160): Buffer =>
  buildRtp({ marker: false, payloadType: 0, sequenceNumber: seq & 0xffff, timestamp: ts >>> 0, ssrc }, payload);

function pair(suite: SrtpSuite): [SrtpSession, SrtpSession] {
  const { masterKey, masterSalt } = parseKeyParams(suite, generateKeyParams(suite));
  return [new SrtpSession(suite, masterKey, masterSalt), new SrtpSession(suite, masterKey, masterSalt)];
}

for (const suite of SRTP_SUITES) {
  test(`${suite}: protect/unprotect round trip, payload hidden, tag length`, () => {
    const [tx, rx] = pair(suite);
    for (let seq = 100; seq < 200; seq++) {
      const p = packet(seq);
      const s = tx.protect(p);
      assert.equal(s.length, p.length + SUITE_PARAMS[suite].tagLength);
      assert.deepEqual(s.subarray(0, 12), p.subarray(0, 12), 'the header stays readable');
      assert.notDeepEqual(s.subarray(12, p.length), p.subarray(12), 'the payload is encrypted');
      assert.deepEqual(rx.unprotect(s), p);
    }
    assert.equal(rx.authFailures, 0);
  });

  test(`${suite}: any flipped bit is rejected and counted`, () => {
    const [tx, rx] = pair(suite);
    const s = tx.protect(packet(7));
    for (const at of [1, 4, 12, 100, s.length - 1]) {
      const bad = Buffer.from(s);
      bad[at]! ^= 0x01;
      assert.equal(rx.unprotect(bad), null, `bit at byte ${at}`);
    }
    assert.equal(rx.authFailures, 5);
    assert.ok(rx.unprotect(s), 'the genuine packet still passes');
  });

  test(`${suite}: replays are dropped; reordering within the window is accepted once`, () => {
    const [tx, rx] = pair(suite);
    const ps = [1, 2, 3, 4, 5].map((i) => tx.protect(packet(i)));
    assert.ok(rx.unprotect(ps[0]!));
    assert.ok(rx.unprotect(ps[2]!));
    assert.ok(rx.unprotect(ps[1]!), 'late but inside the window');
    assert.equal(rx.unprotect(ps[1]!), null, 'the same packet again');
    assert.equal(rx.replays, 1);
    assert.ok(rx.unprotect(ps[4]!));
    assert.ok(rx.unprotect(ps[3]!));
  });

  test(`${suite}: sequence wrap-around (rollover counter) and an SSRC change`, () => {
    const [tx, rx] = pair(suite);
    for (let i = 65530; i < 65536 + 10; i++) assert.ok(rx.unprotect(tx.protect(packet(i))), `seq ${i & 0xffff}`);
    for (let i = 0; i < 5; i++) assert.ok(rx.unprotect(tx.protect(packet(5000 + i, 0x55667788))), 'new SSRC');
    assert.equal(rx.authFailures, 0);
  });
}

test('a wrong key fails every packet', () => {
  const [tx] = pair('AES_CM_128_HMAC_SHA1_80');
  const [other] = pair('AES_CM_128_HMAC_SHA1_80');
  for (let i = 0; i < 10; i++) assert.equal(other.unprotect(tx.protect(packet(i))), null);
  assert.equal(other.authFailures, 10);
});

test('SDES key parameters: inline, bare base64, lifetime; wrong length and MKI are refused', () => {
  const kp = generateKeyParams('AES_CM_128_HMAC_SHA1_80');
  assert.match(kp, /^inline:[A-Za-z0-9+/]{40}$/);
  const { masterKey, masterSalt } = parseKeyParams('AES_CM_128_HMAC_SHA1_80', kp);
  assert.equal(formatKeyParams(masterKey, masterSalt), kp);
  assert.deepEqual(parseKeyParams('AES_CM_128_HMAC_SHA1_80', kp.slice(7)).masterKey, masterKey);
  assert.deepEqual(parseKeyParams('AES_CM_128_HMAC_SHA1_80', `${kp}|2^31`).masterSalt, masterSalt);
  assert.throws(() => parseKeyParams('AEAD_AES_256_GCM', kp), (e: unknown) => e instanceof MediaError && /needs 44 bytes/.test(e.message));
  assert.throws(() => parseKeyParams('AES_CM_128_HMAC_SHA1_80', `${kp}|2^31|1:1`), /MKI/);
  assert.throws(() => parseKeyParams('AES_CM_128_HMAC_SHA1_80', 'inline:@@@'), /base64/);
  assert.deepEqual(parseCryptoAttribute(`1 AES_CM_128_HMAC_SHA1_80 ${kp}`), { tag: 1, suite: 'AES_CM_128_HMAC_SHA1_80', keyParams: kp });
});
