import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHmac } from 'node:crypto';
import { deriveSessionKey, deriveSessionKeys, SrtpSession } from '../../../src/rtp-bridge/srtp/context.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');
const HEX = (b: Buffer): string => b.toString('hex').toUpperCase();

/** A 12-byte RTP header followed by the payload. */
function rtp(seq: number, ssrc: number, payload: Buffer, ts = 0): Buffer {
  const p = Buffer.alloc(12 + payload.length);
  p[0] = 0x80;
  p.writeUInt16BE(seq, 2);
  p.writeUInt32BE(ts, 4);
  p.writeUInt32BE(ssrc, 8);
  payload.copy(p, 12);
  return p;
}

test('RFC 3711 B.2: AES-CM keystream through protect(), counter 0000 to FF01', () => {
  // Session key and salt as given; SSRC, ROC and SEQ 0, so the IV is the salt * 2^16. An
  // all-zero payload of 0xFF02 blocks makes the encrypted payload the keystream itself.
  const s = SrtpSession.fromSessionKeys('AES_CM_128_HMAC_SHA1_80', {
    cipherKey: hex('2B7E151628AED2A6ABF7158809CF4F3C'),
    cipherSalt: hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD'),
    authKey: Buffer.alloc(20),
  });
  const blocks = 0xff02;
  const ks = s.protect(rtp(0, 0, Buffer.alloc(blocks * 16))).subarray(12, 12 + blocks * 16);
  const block = (n: number): string => HEX(ks.subarray(n * 16, n * 16 + 16));
  assert.equal(block(0x0000), 'E03EAD0935C95E80E166B16DD92B4EB4');
  assert.equal(block(0x0001), 'D23513162B02D0F72A43A2FE4A5F97AB');
  assert.equal(block(0x0002), '41E95B3BB0A2E8DD477901E4FCA894C0');
  assert.equal(block(0xfeff), 'EC8CDF7398607CB0F2D21675EA9EA1E4');
  assert.equal(block(0xff00), '362B7C3C6773516318A077D7FC5073AE');
  assert.equal(block(0xff01), '6A2CC3787889374FBEB4C81B17BA6C44');
});

test('RFC 3711 B.3: key derivation', () => {
  // The RFC's master salt is 0EC675AD498AFEEBB6960B3AABE6 (not ...FEE0B6BB15A6F53A).
  const key = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
  const salt = hex('0EC675AD498AFEEBB6960B3AABE6');
  const keys = deriveSessionKeys('AES_CM_128_HMAC_SHA1_80', key, salt);
  assert.equal(HEX(keys.cipherKey), 'C61E7A93744F39EE10734AFE3FF7A087');
  assert.equal(HEX(keys.cipherSalt), '30CBBC08863D8C85D49DB34A9AE1');
  assert.equal(HEX(keys.authKey!), 'CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4');
});

test('RFC 6188 7.2: AES-256-CM PRF key derivation (the PRF of AEAD_AES_256_GCM)', () => {
  const key = hex('f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6');
  const salt = hex('3b04803de51ee7c96423ab5b78d2');
  assert.equal(HEX(deriveSessionKey(key, salt, 0x00, 32)), '5BA1064E30EC51613CAD926C5A28EF731EC7FB397F70A960653CAF06554CD8C4');
  assert.equal(HEX(deriveSessionKey(key, salt, 0x02, 14)), 'FA31791685CA444A9E07C6C64E93');
  assert.equal(HEX(deriveSessionKey(key, salt, 0x01, 20)), 'FD9C32D39ED5FBB5A9DC96B30818454D1313DC05');
});

test('a 12-byte GCM master salt enters the PRF right-padded with two zero bytes', () => {
  const key = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
  const salt12 = hex('0EC675AD498AFEEBB6960B3A');
  const keys = deriveSessionKeys('AEAD_AES_128_GCM', key, salt12);
  assert.deepEqual(keys.cipherKey, deriveSessionKey(key, Buffer.concat([salt12, Buffer.alloc(2)]), 0, 16));
  assert.notDeepEqual(keys.cipherKey, deriveSessionKey(key, Buffer.concat([Buffer.alloc(2), salt12]), 0, 16));
  assert.equal(keys.cipherSalt.length, 12);
  assert.equal(keys.authKey, null);
});

test('AES_CM_128_HMAC_SHA1_80 packet: libsrtp reference vector (RFC 3711 B.3 master key)', () => {
  const key = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
  const salt = hex('0EC675AD498AFEEBB6960B3AABE6');
  const plain = hex('800f1234decafbad cafebabe abababab abababababababab abababab');
  const cipher = hex('800f1234decafbad cafebabe 4e55dc4c e79978d88ca4d215 949d2402 b78d6acc99ea179b8dbb');
  assert.deepEqual(new SrtpSession('AES_CM_128_HMAC_SHA1_80', key, salt).protect(plain), cipher);
  assert.deepEqual(new SrtpSession('AES_CM_128_HMAC_SHA1_80', key, salt).unprotect(cipher), plain);
  const short = new SrtpSession('AES_CM_128_HMAC_SHA1_32', key, salt).protect(plain);
  assert.deepEqual(short, cipher.subarray(0, cipher.length - 6), 'the _32 tag is the first 4 bytes of the same HMAC');
});

// RFC 7714 section 16 (AEAD_AES_128_GCM) and 17 (AEAD_AES_256_GCM): session keys given directly.
const GCM_SALT = hex('517569642070726f2071756f');
const GCM_PLAIN = hex('8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976 69736120 696e2070 61727465 73207472 6573');

test('RFC 7714 16.1: AEAD_AES_128_GCM RTP encryption and decryption', () => {
  const keys = { cipherKey: hex('000102030405060708090a0b0c0d0e0f'), cipherSalt: GCM_SALT, authKey: null };
  const expected = hex(`8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5
    0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce`);
  assert.deepEqual(SrtpSession.fromSessionKeys('AEAD_AES_128_GCM', keys).protect(GCM_PLAIN), expected);
  assert.deepEqual(SrtpSession.fromSessionKeys('AEAD_AES_128_GCM', keys).unprotect(expected), GCM_PLAIN);
});

test('RFC 7714 17.1: AEAD_AES_256_GCM RTP encryption and decryption', () => {
  const keys = { cipherKey: hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'), cipherSalt: GCM_SALT, authKey: null };
  const expected = hex(`8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238
    9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13`);
  assert.deepEqual(SrtpSession.fromSessionKeys('AEAD_AES_256_GCM', keys).protect(GCM_PLAIN), expected);
  assert.deepEqual(SrtpSession.fromSessionKeys('AEAD_AES_256_GCM', keys).unprotect(expected), GCM_PLAIN);
});

/**
 * The published vectors all have ROC 0. These rebuild the IVs and the HMAC input by hand with
 * Node's ciphers, so the ROC's place in them is checked too, after a real sequence wrap.
 */
test('with ROC 1, AES-CM IV and HMAC input match a by-hand construction', () => {
  const keys = { cipherKey: hex('2B7E151628AED2A6ABF7158809CF4F3C'), cipherSalt: hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD'), authKey: hex('CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4') };
  const s = SrtpSession.fromSessionKeys('AES_CM_128_HMAC_SHA1_80', keys);
  const ssrc = 0xdeadbeef;
  const payload = Buffer.from('a payload that spans more than one AES block, 54 bytes');
  s.protect(rtp(0xfffe, ssrc, payload));
  const got = s.protect(rtp(0x0003, ssrc, payload)); // wrapped: ROC is now 1
  const iv = hex('F0F1F2F3 F4F5F6F7 F8F9FAFB FCFD 0000');
  iv.writeUInt32BE((iv.readUInt32BE(4) ^ ssrc) >>> 0, 4);
  iv.writeUInt32BE((iv.readUInt32BE(8) ^ 1) >>> 0, 8);
  iv.writeUInt16BE(iv.readUInt16BE(12) ^ 0x0003, 12);
  const header = rtp(0x0003, ssrc, Buffer.alloc(0));
  const enc = createCipheriv('aes-128-ctr', keys.cipherKey, iv).update(payload);
  const tag = createHmac('sha1', keys.authKey).update(header).update(enc).update(hex('00000001')).digest().subarray(0, 10);
  assert.deepEqual(got, Buffer.concat([header, enc, tag]));
});

test('with ROC 1, the GCM IV and AAD match a by-hand construction', () => {
  const keys = { cipherKey: hex('000102030405060708090a0b0c0d0e0f'), cipherSalt: GCM_SALT, authKey: null };
  const s = SrtpSession.fromSessionKeys('AEAD_AES_128_GCM', keys);
  const ssrc = 0x5501a0b2;
  // With a CSRC and a header extension: both belong to the AAD, not to the ciphertext.
  const header = hex('91 00 0003 00000000 5501a0b2 11111111 bede0001 10ff0000');
  const payload = Buffer.from('Gallia est omnis divisa in partes tres');
  s.protect(Buffer.concat([hex('91 00 fff0 00000000 5501a0b2 11111111 bede0001 10ff0000'), payload]));
  const got = s.protect(Buffer.concat([header, payload]));
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(ssrc, 2);
  iv.writeUInt32BE(1, 6);
  iv.writeUInt16BE(0x0003, 10);
  for (let i = 0; i < 12; i++) iv[i]! ^= GCM_SALT[i]!;
  const c = createCipheriv('aes-128-gcm', keys.cipherKey, iv);
  c.setAAD(header);
  const enc = Buffer.concat([c.update(payload), c.final()]);
  assert.deepEqual(got, Buffer.concat([header, enc, c.getAuthTag()]));
});
