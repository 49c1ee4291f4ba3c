import { createCipheriv, createDecipheriv, createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { deriveSessionKey, LABEL_RTP_AUTH, LABEL_RTP_ENCRYPTION, LABEL_RTP_SALT } from './kdf.ts';
import { SUITE_PARAMS, type SrtpSuite, type SuiteParams } from './suites.ts';

interface StreamState {
  roc: number;
  /** Highest sequence number authenticated so far (s_l of RFC 3711 3.3.1). */
  highestSeq: number;
  /** Packet index of highestSeq; the replay window is relative to it. */
  highestIndex: number;
  /** Bit k set: index highestIndex - k was received (k = 0..63). */
  window: bigint;
  started: boolean;
}

const MAX_STREAMS = 16;
const WINDOW = 64n;

/** Where the RTP payload starts: after CSRCs and the header extension. -1 when malformed. */
function headerLength(p: Buffer): number {
  if (p.length < 12 || p[0]! >> 6 !== 2) return -1;
  let off = 12 + (p[0]! & 0x0f) * 4;
  if (p[0]! & 0x10) {
    if (p.length < off + 4) return -1;
    off += 4 + p.readUInt16BE(off + 2) * 4;
  }
  return off <= p.length ? off : -1;
}

/**
 * SRTP (RFC 3711; AEAD GCM per RFC 7714) for one direction of one master key. Streams are
 * tracked per SSRC (a phone may change SSRC mid-call). Packets from the network that fail
 * authentication or replay are dropped (null), never thrown on.
 */
export class SrtpSession {
  readonly suite: SrtpSuite;
  readonly #p: SuiteParams;
  readonly #cipherName: string;
  readonly #encKey: KeyObject;
  readonly #authKey: KeyObject | null;
  readonly #salt: Buffer;
  readonly #streams = new Map<number, StreamState>();
  #authFailures = 0;
  #replays = 0;

  constructor(suite: SrtpSuite, masterKey: Buffer, masterSalt: Buffer) {
    this.suite = suite;
    this.#p = SUITE_PARAMS[suite];
    if (masterKey.length !== this.#p.keyLength || masterSalt.length !== this.#p.saltLength) throw new Error(`${suite}: wrong master key or salt length`);
    this.#encKey = createSecretKey(deriveSessionKey(masterKey, masterSalt, LABEL_RTP_ENCRYPTION, this.#p.keyLength));
    this.#authKey = this.#p.aead ? null : createSecretKey(deriveSessionKey(masterKey, masterSalt, LABEL_RTP_AUTH, 20));
    this.#salt = deriveSessionKey(masterKey, masterSalt, LABEL_RTP_SALT, this.#p.saltLength);
    this.#cipherName = this.#p.aead ? (this.#p.keyLength === 32 ? 'aes-256-gcm' : 'aes-128-gcm') : 'aes-128-ctr';
  }

  get authFailures(): number {
    return this.#authFailures;
  }

  get replays(): number {
    return this.#replays;
  }

  /** Encrypts and authenticates an RTP packet (sender side). */
  protect(rtp: Buffer): Buffer {
    const hlen = headerLength(rtp);
    if (hlen < 0) throw new Error('not an RTP packet');
    const ssrc = rtp.readUInt32BE(8);
    const seq = rtp.readUInt16BE(2);
    const s = this.#stream(ssrc);
    if (s.started && seq < s.highestSeq && s.highestSeq - seq > 0x8000) s.roc = (s.roc + 1) >>> 0;
    if (!s.started || seq > s.highestSeq || s.highestSeq - seq > 0x8000) s.highestSeq = seq;
    s.started = true;
    const out = Buffer.allocUnsafe(rtp.length + this.#p.tagLength);
    rtp.copy(out, 0, 0, hlen);
    const payload = rtp.subarray(hlen);
    if (this.#p.aead) {
      const c = createCipheriv(this.#cipherName as 'aes-128-gcm', this.#encKey, this.#gcmIv(ssrc, s.roc, seq), { authTagLength: 16 });
      c.setAAD(rtp.subarray(0, hlen));
      const enc = c.update(payload);
      c.final();
      enc.copy(out, hlen);
      c.getAuthTag().copy(out, hlen + enc.length);
      return out;
    }
    const c = createCipheriv('aes-128-ctr', this.#encKey, this.#cmIv(ssrc, s.roc, seq));
    c.update(payload).copy(out, hlen);
    this.#tag(out.subarray(0, rtp.length), s.roc).copy(out, rtp.length, 0, this.#p.tagLength);
    return out;
  }

  /** Authenticates and decrypts an SRTP packet; null when it fails or is a replay. */
  unprotect(srtp: Buffer): Buffer | null {
    const tagLen = this.#p.tagLength;
    const hlen = headerLength(srtp);
    if (hlen < 0 || srtp.length < hlen + tagLen) {
      this.#authFailures++;
      return null;
    }
    const ssrc = srtp.readUInt32BE(8);
    const seq = srtp.readUInt16BE(2);
    const known = this.#streams.get(ssrc);
    const s = known ?? { roc: 0, highestSeq: seq, highestIndex: seq, window: 0n, started: false };
    const roc = s.started ? this.#guessRoc(s, seq) : 0;
    const index = roc * 0x10000 + seq;
    if (s.started && this.#isReplay(s, index)) {
      this.#replays++;
      return null;
    }
    const body = srtp.subarray(0, srtp.length - tagLen);
    const tag = srtp.subarray(srtp.length - tagLen);
    let plain: Buffer;
    if (this.#p.aead) {
      try {
        const d = createDecipheriv(this.#cipherName as 'aes-128-gcm', this.#encKey, this.#gcmIv(ssrc, roc >>> 0, seq), { authTagLength: 16 });
        d.setAAD(body.subarray(0, hlen));
        d.setAuthTag(tag);
        const dec = d.update(body.subarray(hlen));
        d.final();
        plain = Buffer.concat([body.subarray(0, hlen), dec]);
      } catch {
        this.#authFailures++;
        return null;
      }
    } else {
      const expected = this.#tag(body, roc >>> 0).subarray(0, tagLen);
      if (!timingSafeEqual(expected, tag)) {
        this.#authFailures++;
        return null;
      }
      const d = createDecipheriv('aes-128-ctr', this.#encKey, this.#cmIv(ssrc, roc >>> 0, seq));
      plain = Buffer.allocUnsafe(body.length);
      body.copy(plain, 0, 0, hlen);
      d.update(body.subarray(hlen)).copy(plain, hlen);
    }
    if (!known) this.#remember(ssrc, s);
    this.#accept(s, roc, seq, index);
    return plain;
  }

  /** RFC 3711 Appendix A: the ROC this sequence number most likely belongs to. */
  #guessRoc(s: StreamState, seq: number): number {
    if (s.highestSeq < 0x8000) return seq - s.highestSeq > 0x8000 ? s.roc - 1 : s.roc;
    return s.highestSeq - 0x8000 > seq ? s.roc + 1 : s.roc;
  }

  #isReplay(s: StreamState, index: number): boolean {
    const delta = BigInt(s.highestIndex - index);
    if (delta < 0n) return false;
    if (delta >= WINDOW) return true;
    return ((s.window >> delta) & 1n) === 1n;
  }

  #accept(s: StreamState, roc: number, seq: number, index: number): void {
    if (!s.started) {
      s.started = true;
      s.roc = roc;
      s.highestSeq = seq;
      s.highestIndex = index;
      s.window = 1n;
      return;
    }
    const delta = index - s.highestIndex;
    if (delta > 0) {
      s.window = delta >= 64 ? 1n : ((s.window << BigInt(delta)) | 1n) & 0xffffffffffffffffn;
      s.highestIndex = index;
      s.highestSeq = seq;
      s.roc = roc;
    } else {
      s.window |= 1n << BigInt(-delta);
    }
  }

  #stream(ssrc: number): StreamState {
    let s = this.#streams.get(ssrc);
    if (!s) {
      s = { roc: 0, highestSeq: 0, highestIndex: 0, window: 0n, started: false };
      this.#remember(ssrc, s);
    }
    return s;
  }

  #remember(ssrc: number, s: StreamState): void {
    if (this.#streams.size >= MAX_STREAMS) this.#streams.delete(this.#streams.keys().next().value!);
    this.#streams.set(ssrc, s);
  }

  /** AES-CM IV: (k_s * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16). */
  #cmIv(ssrc: number, roc: number, seq: number): Buffer {
    const iv = Buffer.alloc(16);
    this.#salt.copy(iv, 0);
    iv.writeUInt32BE((iv.readUInt32BE(4) ^ ssrc) >>> 0, 4);
    iv.writeUInt32BE((iv.readUInt32BE(8) ^ roc) >>> 0, 8);
    iv.writeUInt16BE((iv.readUInt16BE(12) ^ seq) & 0xffff, 12);
    return iv;
  }

  /** GCM IV (RFC 7714 8.1): (00 00 || SSRC || ROC || SEQ) XOR the 12-byte session salt. */
  #gcmIv(ssrc: number, roc: number, seq: number): Buffer {
    const iv = Buffer.alloc(12);
    iv.writeUInt32BE(ssrc >>> 0, 2);
    iv.writeUInt32BE(roc >>> 0, 6);
    iv.writeUInt16BE(seq, 10);
    for (let i = 0; i < 12; i++) iv[i]! ^= this.#salt[i]!;
    return iv;
  }

  /** HMAC-SHA1 over the authenticated portion followed by the ROC (RFC 3711 4.2). */
  #tag(authenticated: Buffer, roc: number): Buffer {
    const rocBuf = Buffer.allocUnsafe(4);
    rocBuf.writeUInt32BE(roc >>> 0, 0);
    return createHmac('sha1', this.#authKey!).update(authenticated).update(rocBuf).digest();
  }
}

/** RTCP multiplexed on the RTP port (RFC 5761). */
export function isRtcp(packet: Uint8Array): boolean {
  return packet.length >= 2 && packet[1]! >= 192 && packet[1]! <= 223;
}
