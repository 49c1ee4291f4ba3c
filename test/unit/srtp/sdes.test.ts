import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCryptoAttribute, formatKeyParams, generateKeyParams, parseCryptoAttribute, parseKeyParams } from '../../../src/rtp-bridge/srtp/sdes.ts';
import { isSrtpSuite, SRTP_SUITES, SUITE_PARAMS } from '../../../src/rtp-bridge/srtp/suites.ts';
import { MediaError } from '../../../src/errors/media-error.ts';

const invalid = (pattern: RegExp) => (err: unknown): boolean => {
  assert.ok(err instanceof MediaError, `not a MediaError: ${String(err)}`);
  assert.equal(err.code, 'invalid_argument');
  assert.match(err.message, pattern);
  return true;
};

// 30 bytes: 00..0f key, 10..1d salt.
const RAW = Buffer.from(Array.from({ length: 30 }, (_, i) => i));
const B64 = RAW.toString('base64');

test('suites: GCM preferred, lengths per RFC 3711 / 7714', () => {
  assert.deepEqual(SRTP_SUITES, ['AEAD_AES_256_GCM', 'AEAD_AES_128_GCM', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32']);
  assert.deepEqual(
    SRTP_SUITES.map((s) => [SUITE_PARAMS[s].keyLength, SUITE_PARAMS[s].saltLength, SUITE_PARAMS[s].tagLength]),
    [[32, 12, 16], [16, 12, 16], [16, 14, 10], [16, 14, 4]],
  );
  assert.equal(isSrtpSuite('AES_CM_128_HMAC_SHA1_80'), true);
  assert.equal(isSrtpSuite('aes_cm_128_hmac_sha1_80'), false);
  assert.equal(isSrtpSuite('F8_128_HMAC_SHA1_80'), false);
  assert.equal(isSrtpSuite('toString'), false);
});

test('parseKeyParams: inline, bare base64 (ffmpeg), lifetime', () => {
  const want = { masterKey: RAW.subarray(0, 16), masterSalt: RAW.subarray(16) };
  assert.deepEqual(parseKeyParams('AES_CM_128_HMAC_SHA1_80', `inline:${B64}`), want);
  assert.deepEqual(parseKeyParams('AES_CM_128_HMAC_SHA1_32', B64), want);
  assert.deepEqual(parseKeyParams('AES_CM_128_HMAC_SHA1_80', ` inline:${B64}|2^31 `), want);
  assert.deepEqual(parseKeyParams('AES_CM_128_HMAC_SHA1_80', `inline:${B64}|1048576`), want);
  const gcm = Buffer.from(Array.from({ length: 44 }, (_, i) => 255 - i));
  assert.deepEqual(parseKeyParams('AEAD_AES_256_GCM', `inline:${gcm.toString('base64')}`), { masterKey: gcm.subarray(0, 32), masterSalt: gcm.subarray(32) });
  const gcm128 = gcm.subarray(0, 28).toString('base64');
  assert.match(gcm128, /==$/);
  assert.equal(parseKeyParams('AEAD_AES_128_GCM', gcm128.replace(/=+$/, '')).masterSalt.length, 12, 'unpadded base64 too');
});

test('parseKeyParams refuses MKIs, wrong lengths and junk with clear messages', () => {
  assert.throws(() => parseKeyParams('AES_CM_128_HMAC_SHA1_80', `inline:${B64}|2^20|1:4`), invalid(/MKI is not supported/));
  assert.throws(() => parseKeyParams('AES_CM_128_HMAC_SHA1_80', `inline:${B64}|1:4`), invalid(/MKI is not supported/));
  assert.throws(() => parseKeyParams('AEAD_AES_128_GCM', `inline:${B64}`), invalid(/AEAD_AES_128_GCM needs 28 bytes.*got 30/));
  assert.throws(() => parseKeyParams('AEAD_AES_256_GCM', `inline:${B64}`), invalid(/AEAD_AES_256_GCM needs 44 bytes/));
  assert.throws(() => parseKeyParams('AES_CM_128_HMAC_SHA1_80', 'inline:@@@@'), invalid(/not base64/));
  assert.throws(() => parseKeyParams('AES_CM_128_HMAC_SHA1_80', ''), invalid(/not base64/));
  assert.throws(() => parseKeyParams('AES_CM_128_HMAC_SHA1_80', `inline:${B64}|forever`), invalid(/neither a lifetime nor an MKI/));
  assert.throws(() => parseKeyParams('AES_CM_128_HMAC_SHA1_80', `inline:${B64}|2^20|1:4;inline:${B64}|2^20|2:4`), invalid(/more than one key/));
});

test('formatKeyParams and generateKeyParams produce what parseKeyParams reads', () => {
  assert.equal(formatKeyParams(RAW.subarray(0, 16), RAW.subarray(16)), `inline:${B64}`);
  for (const suite of SRTP_SUITES) {
    const a = generateKeyParams(suite);
    const b = generateKeyParams(suite);
    assert.match(a, /^inline:[A-Za-z0-9+/]+={0,2}$/);
    assert.notEqual(a, b, 'fresh randomness each time');
    const { masterKey, masterSalt } = parseKeyParams(suite, a);
    assert.equal(formatKeyParams(masterKey, masterSalt), a);
  }
});

test('parseCryptoAttribute / formatCryptoAttribute', () => {
  const value = formatCryptoAttribute(1, 'AES_CM_128_HMAC_SHA1_80', `inline:${B64}`);
  assert.equal(value, `1 AES_CM_128_HMAC_SHA1_80 inline:${B64}`);
  assert.deepEqual(parseCryptoAttribute(value), { tag: 1, suite: 'AES_CM_128_HMAC_SHA1_80', keyParams: `inline:${B64}`, sessionParams: [] });
  assert.deepEqual(parseCryptoAttribute(`a=crypto:2 AEAD_AES_128_GCM inline:${B64}|2^31 WSH=64 UNENCRYPTED_SRTCP -FUTURE_THING`), {
    tag: 2,
    suite: 'AEAD_AES_128_GCM',
    keyParams: `inline:${B64}|2^31`,
    sessionParams: ['WSH=64', 'UNENCRYPTED_SRTCP'],
  });
  assert.equal(parseCryptoAttribute(`3 F8_128_HMAC_SHA1_80 inline:${B64}`).suite, 'F8_128_HMAC_SHA1_80', 'unknown suites are reported, not refused, here');
  assert.throws(() => parseCryptoAttribute('AES_CM_128_HMAC_SHA1_80 inline:x'), invalid(/not an a=crypto value/));
  assert.throws(() => parseCryptoAttribute('1 AES_CM_128_HMAC_SHA1_80'), invalid(/not an a=crypto value/));
  assert.throws(() => parseCryptoAttribute(`1 AES_CM_128_HMAC_SHA1_80 inline:${B64} UNENCRYPTED_SRTP`), invalid(/UNENCRYPTED_SRTP.*not supported/));
  assert.throws(() => parseCryptoAttribute(`1 AES_CM_128_HMAC_SHA1_80 inline:${B64} KDR=10`), invalid(/KDR=10.*not supported/));
});
