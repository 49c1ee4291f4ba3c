import { createCipheriv } from 'node:crypto';

export const LABEL_RTP_ENCRYPTION = 0x00;
export const LABEL_RTP_AUTH = 0x01;
export const LABEL_RTP_SALT = 0x02;

/**
 * The SRTP key derivation of RFC 3711 4.3 with a key derivation rate of 0: the AES-CM PRF
 * keyed by the master key, with IV = (master salt XOR label at byte 7) * 2^16. A 12-byte
 * (GCM) master salt is padded with two zero bytes, as RFC 7714 section 12 specifies.
 */
export function deriveSessionKey(masterKey: Buffer, masterSalt: Buffer, label: number, length: number): Buffer {
  const iv = Buffer.alloc(16);
  masterSalt.copy(iv, 0, 0, Math.min(14, masterSalt.length));
  iv[7]! ^= label;
  const cipher = createCipheriv(masterKey.length === 32 ? 'aes-256-ctr' : 'aes-128-ctr', masterKey, iv);
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]).subarray(0, length);
}
