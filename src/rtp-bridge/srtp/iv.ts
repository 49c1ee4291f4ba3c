/**
 * The IVs of SRTP and SRTCP (RFC 3711 4.1.1, RFC 7714 8.1 and 9.1) are all the session salt
 * with the SSRC and the packet index XORed in at fixed byte offsets. Written into `iv` in
 * place: one buffer per session, nothing allocated per packet.
 */

/** `iv` starts as the first `saltBytes` of the salt, zero after. */
export function saltIv(iv: Buffer, salt: Buffer, saltBytes: number): void {
  for (let i = 0; i < saltBytes; i++) iv[i] = salt[i]!;
  iv.fill(0, saltBytes);
}

/** XORs a big-endian 32-bit word into `iv` at byte `at`. */
export function xorWord(iv: Buffer, at: number, v: number): void {
  iv[at]! ^= v >>> 24;
  iv[at + 1]! ^= (v >>> 16) & 0xff;
  iv[at + 2]! ^= (v >>> 8) & 0xff;
  iv[at + 3]! ^= v & 0xff;
}

/** XORs a big-endian 16-bit value into `iv` at byte `at`. */
export function xorHalf(iv: Buffer, at: number, v: number): void {
  iv[at]! ^= v >>> 8;
  iv[at + 1]! ^= v & 0xff;
}
