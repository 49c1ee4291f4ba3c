import { createCipheriv, createDecipheriv, createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { invalidArgument } from '../../errors/media-error.ts';
import { saltIv, xorHalf, xorWord } from './iv.ts';
import { ReplayWindow } from './replay-window.ts';
import { SUITE_PARAMS, type SrtpSuite, type SuiteParams } from './suites.ts';

export const LABEL_RTP_ENCRYPTION = 0x00;
export const LABEL_RTP_AUTH = 0x01;
export const LABEL_RTP_SALT = 0x02;

/** Session keys derived from one master key (RFC 3711 4.3). */
export interface SessionKeys {
  cipherKey: Buffer;
  cipherSalt: Buffer;
  /** HMAC-SHA1 key; null for AEAD suites. */
  authKey: Buffer | null;
}

/**
 * The RFC 3711 4.3 key derivation with a key derivation rate of 0 (r = 0): the AES-CM PRF
 * keyed by the master key, x = label at byte 7 XOR the 112-bit master salt, run over zeros.
 * A 12-byte GCM salt is right-padded with two zero bytes to 112 bits, and AEAD_AES_256_GCM
 * runs the PRF as AES-256-CM (RFC 7714 section 11; what libsrtp does).
 */
export function deriveSessionKey(masterKey: Buffer, masterSalt: Buffer, label: number, length: number): Buffer {
  const iv = Buffer.alloc(16);
  masterSalt.copy(iv, 0, 0, Math.min(14, masterSalt.length));
  iv[7]! ^= label;
  const prf = createCipheriv(masterKey.length === 32 ? 'aes-256-ctr' : 'aes-128-ctr', masterKey, iv);
  return prf.update(Buffer.alloc(length));
}

/** The key derivation labels of one protocol: SRTP's 0, 1, 2 (SRTCP's are 3, 4, 5). */
export interface KeyLabels {
  encryption: number;
  auth: number;
  salt: number;
}

const RTP_LABELS: KeyLabels = { encryption: LABEL_RTP_ENCRYPTION, auth: LABEL_RTP_AUTH, salt: LABEL_RTP_SALT };

export function deriveSessionKeys(suite: SrtpSuite, masterKey: Buffer, masterSalt: Buffer, labels: KeyLabels = RTP_LABELS): SessionKeys {
  const p = SUITE_PARAMS[suite];
  if (masterKey.length !== p.keyLength || masterSalt.length !== p.saltLength) {
    throw invalidArgument(`${suite} needs a ${p.keyLength}-byte master key and a ${p.saltLength}-byte master salt, got ${masterKey.length} and ${masterSalt.length}`);
  }
  return {
    cipherKey: deriveSessionKey(masterKey, masterSalt, labels.encryption, p.keyLength),
    cipherSalt: deriveSessionKey(masterKey, masterSalt, labels.salt, p.saltLength),
    authKey: p.aead ? null : deriveSessionKey(masterKey, masterSalt, labels.auth, p.authKeyLength),
  };
}

/** What a session encrypts and authenticates with: its cipher, its session keys as key objects, its salt. */
export interface SessionCrypto {
  cipher: 'aes-128-ctr' | 'aes-128-gcm' | 'aes-256-gcm';
  cipherKey: KeyObject;
  /** HMAC-SHA1 key; null for AEAD suites. */
  authKey: KeyObject | null;
  salt: Buffer;
}

export function sessionCrypto(suite: SrtpSuite, keys: SessionKeys): SessionCrypto {
  const p = SUITE_PARAMS[suite];
  if (keys.cipherKey.length !== p.keyLength || keys.cipherSalt.length !== p.saltLength || (keys.authKey?.length ?? 0) !== p.authKeyLength) {
    throw invalidArgument(`wrong session key lengths for ${suite}`);
  }
  return {
    cipher: p.aead ? (p.keyLength === 32 ? 'aes-256-gcm' : 'aes-128-gcm') : 'aes-128-ctr',
    cipherKey: createSecretKey(keys.cipherKey),
    authKey: keys.authKey ? createSecretKey(keys.authKey) : null,
    salt: Buffer.from(keys.cipherSalt),
  };
}

/** RTCP multiplexed on the RTP port (RFC 5761 4): the second byte is an RTCP packet type, 192..223. */
export function isRtcp(packet: Uint8Array): boolean {
  return packet.length >= 2 && packet[1]! >= 192 && packet[1]! <= 223;
}

/**
 * Length of the RTP header including CSRCs and the header extension, which all stay in the
 * clear and are authenticated; -1 when it is not RTP v2 or does not fit within `limit`.
 */
function headerLength(p: Buffer, limit: number): number {
  if (limit < 12) return -1;
  const b0 = p[0]!;
  if ((b0 & 0xc0) !== 0x80) return -1;
  let off = 12 + (b0 & 0x0f) * 4;
  if (b0 & 0x10) {
    if (off + 4 > limit) return -1;
    off += 4 + ((p[off + 2]! << 8) | p[off + 3]!) * 4;
  }
  return off <= limit ? off : -1;
}

/**
 * Per-SSRC state: the rollover counter and highest sequence number (RFC 3711 3.3.1) and,
 * on the receiving side, the replay window over ROC || SEQ.
 */
class Stream {
  roc: number;
  highestSeq: number;
  readonly window: ReplayWindow;

  constructor(roc: number, seq: number, window = new ReplayWindow(roc * 0x10000 + seq)) {
    this.roc = roc;
    this.highestSeq = seq;
    this.window = window;
  }

  get highestIndex(): number {
    return this.roc * 0x10000 + this.highestSeq;
  }

  /**
   * RFC 3711 Appendix A: the ROC the sender most likely used for this sequence number. -1
   * means "before the ROC was 0", i.e. older than anything this stream can still accept.
   */
  guessRoc(seq: number): number {
    if (this.highestSeq < 0x8000) return seq - this.highestSeq > 0x8000 ? this.roc - 1 : this.roc;
    return this.highestSeq - 0x8000 > seq ? this.roc + 1 : this.roc;
  }

  seen(index: number): boolean {
    return this.window.seen(index);
  }

  /** Records an authenticated packet. */
  accept(roc: number, seq: number, index: number): void {
    if (this.window.accept(index)) {
      this.roc = roc;
      this.highestSeq = seq;
    }
  }
}

export interface SrtpStreamState {
  ssrc: number;
  roc: number;
  seq: number;
}

/** Enough for SSRC changes (re-INVITE, transfers, a few simultaneous streams) yet bounded. */
const MAX_STREAMS = 16;
const MAX_ROC = 0xffffffff;

/**
 * SRTP (RFC 3711; AEAD AES-GCM per RFC 7714) for one direction under one master key.
 * State is kept per SSRC, because a phone may change SSRC mid-call. unprotect() gets
 * attacker-controlled input, so it never throws: bad packets are counted and dropped (null).
 * A stream's state is only created or advanced by a packet that authenticated, so forged
 * packets cannot evict real streams or move the replay window.
 */
export class SrtpSession {
  readonly suite: SrtpSuite;
  readonly #p: SuiteParams;
  readonly #tagLength: number;
  #c: SessionCrypto;
  readonly #streams = new Map<number, Stream>();
  /** The stream touched last; skips the LRU reordering for the common single-SSRC case. */
  #lastSsrc = -1;
  // Scratch buffers: createCipheriv copies the IV, so one per session is reused safely.
  readonly #iv: Buffer;
  readonly #rocBytes = Buffer.alloc(4);
  #authFailures = 0;
  #replays = 0;

  constructor(suite: SrtpSuite, masterKey: Buffer, masterSalt: Buffer) {
    this.suite = suite;
    this.#p = SUITE_PARAMS[suite];
    this.#tagLength = this.#p.tagLength;
    this.#iv = Buffer.alloc(this.#p.aead ? 12 : 16);
    this.#c = sessionCrypto(suite, deriveSessionKeys(suite, masterKey, masterSalt));
  }

  /** A session from already derived session keys; for published test vectors that start there. */
  static fromSessionKeys(suite: SrtpSuite, keys: SessionKeys): SrtpSession {
    const c = sessionCrypto(suite, keys);
    const p = SUITE_PARAMS[suite];
    const s = new SrtpSession(suite, Buffer.alloc(p.keyLength), Buffer.alloc(p.saltLength));
    s.#c = c;
    return s;
  }

  /** Each stream's rollover counter and highest sequence number: what a restarted process needs to go on. */
  streams(): SrtpStreamState[] {
    return [...this.#streams].map(([ssrc, st]) => ({ ssrc, roc: st.roc, seq: st.highestSeq }));
  }

  /**
   * Streams saved by streams() in another process. The replay window starts full: nothing
   * at or before the saved index is accepted again, whatever was received before.
   */
  resume(states: readonly SrtpStreamState[]): void {
    for (const st of states.slice(-MAX_STREAMS)) this.#insert(st.ssrc, new Stream(st.roc, st.seq, ReplayWindow.full(st.roc * 0x10000 + st.seq)));
  }

  /** Packets dropped because they failed authentication or were not well-formed SRTP. */
  get authFailures(): number {
    return this.#authFailures;
  }

  /** Packets dropped as replays or as older than the 64-packet window. */
  get replays(): number {
    return this.#replays;
  }

  /** Encrypts and authenticates one RTP packet (sender side); returns a new buffer. */
  protect(rtp: Buffer): Buffer {
    const hlen = headerLength(rtp, rtp.length);
    if (hlen < 0) throw invalidArgument('SRTP protect: not an RTP version 2 packet');
    const seq = (rtp[2]! << 8) | rtp[3]!;
    const ssrc = rtp.readUInt32BE(8);
    const s = this.#streams.get(ssrc);
    let roc = 0;
    if (!s) {
      this.#insert(ssrc, new Stream(0, seq));
    } else {
      roc = s.guessRoc(seq);
      // ROC - 1 can only be a resend from before our first packet; the receiver drops it anyway.
      if (roc < 0) roc = 0;
      else if (roc > MAX_ROC) throw invalidArgument('SRTP protect: the rollover counter is exhausted; rekey');
      else if (roc * 0x10000 + seq > s.highestIndex) {
        s.roc = roc;
        s.highestSeq = seq;
      }
      this.#touch(ssrc, s);
    }
    return this.#seal(rtp, hlen, ssrc, roc, seq);
  }

  /** Authenticates and decrypts one SRTP packet; null when it fails, is a replay or is malformed. */
  unprotect(srtp: Buffer): Buffer | null {
    const tagLen = this.#tagLength;
    const bodyLen = srtp.length - tagLen;
    const hlen = headerLength(srtp, bodyLen);
    if (hlen < 0) {
      this.#authFailures++;
      return null;
    }
    const seq = (srtp[2]! << 8) | srtp[3]!;
    const ssrc = srtp.readUInt32BE(8);
    const s = this.#streams.get(ssrc);
    let roc = 0;
    let index = seq;
    if (s) {
      roc = s.guessRoc(seq);
      index = roc * 0x10000 + seq;
      // Replay check first (RFC 3711 3.3): it is cheaper than authentication.
      if (roc < 0 || roc > MAX_ROC || s.seen(index)) {
        this.#replays++;
        return null;
      }
    }
    const plain = this.#p.aead ? this.#openGcm(srtp, hlen, bodyLen, ssrc, roc, seq) : this.#openCm(srtp, hlen, bodyLen, ssrc, roc, seq);
    if (!plain) {
      this.#authFailures++;
      return null;
    }
    if (s) {
      s.accept(roc, seq, index);
      this.#touch(ssrc, s);
    } else {
      this.#insert(ssrc, new Stream(0, seq));
    }
    return plain;
  }

  #seal(rtp: Buffer, hlen: number, ssrc: number, roc: number, seq: number): Buffer {
    const len = rtp.length;
    const out = Buffer.allocUnsafe(len + this.#tagLength);
    rtp.copy(out, 0, 0, hlen);
    const payload = rtp.subarray(hlen);
    if (this.#p.aead) {
      const c = createCipheriv(this.#c.cipher as 'aes-128-gcm', this.#c.cipherKey, this.#gcmIv(ssrc, roc, seq), { authTagLength: 16 });
      c.setAAD(rtp.subarray(0, hlen));
      c.update(payload).copy(out, hlen);
      c.final();
      c.getAuthTag().copy(out, len);
      return out;
    }
    const c = createCipheriv('aes-128-ctr', this.#c.cipherKey, this.#cmIv(ssrc, roc, seq));
    c.update(payload).copy(out, hlen);
    this.#hmac(out.subarray(0, len), roc).copy(out, len, 0, this.#tagLength);
    return out;
  }

  #openCm(srtp: Buffer, hlen: number, bodyLen: number, ssrc: number, roc: number, seq: number): Buffer | null {
    // Authenticate before decrypting (RFC 3711 3.3 step 5), in constant time.
    const mac = this.#hmac(srtp.subarray(0, bodyLen), roc);
    if (!timingSafeEqual(mac.subarray(0, this.#tagLength), srtp.subarray(bodyLen))) return null;
    const out = Buffer.allocUnsafe(bodyLen);
    srtp.copy(out, 0, 0, hlen);
    const d = createDecipheriv('aes-128-ctr', this.#c.cipherKey, this.#cmIv(ssrc, roc, seq));
    d.update(srtp.subarray(hlen, bodyLen)).copy(out, hlen);
    return out;
  }

  #openGcm(srtp: Buffer, hlen: number, bodyLen: number, ssrc: number, roc: number, seq: number): Buffer | null {
    try {
      const d = createDecipheriv(this.#c.cipher as 'aes-128-gcm', this.#c.cipherKey, this.#gcmIv(ssrc, roc, seq), { authTagLength: 16 });
      d.setAAD(srtp.subarray(0, hlen));
      d.setAuthTag(srtp.subarray(bodyLen));
      const payload = d.update(srtp.subarray(hlen, bodyLen));
      d.final(); // throws when the tag does not verify; the plaintext is discarded then
      const out = Buffer.allocUnsafe(bodyLen);
      srtp.copy(out, 0, 0, hlen);
      payload.copy(out, hlen);
      return out;
    } catch {
      return null;
    }
  }

  #insert(ssrc: number, s: Stream): void {
    if (this.#streams.size >= MAX_STREAMS) this.#streams.delete(this.#streams.keys().next().value!);
    this.#streams.set(ssrc, s);
    this.#lastSsrc = ssrc;
  }

  /** Map iteration order is insertion order, so re-inserting makes it the most recently used. */
  #touch(ssrc: number, s: Stream): void {
    if (ssrc === this.#lastSsrc) return;
    this.#streams.delete(ssrc);
    this.#streams.set(ssrc, s);
    this.#lastSsrc = ssrc;
  }

  /** AES-CM IV (RFC 3711 4.1.1): (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16), i = ROC || SEQ. */
  #cmIv(ssrc: number, roc: number, seq: number): Buffer {
    const iv = this.#iv;
    saltIv(iv, this.#c.salt, 14);
    xorWord(iv, 4, ssrc);
    xorWord(iv, 8, roc);
    xorHalf(iv, 12, seq);
    return iv;
  }

  /** GCM IV (RFC 7714 8.1): (00 00 || SSRC || ROC || SEQ) XOR the 96-bit session salt. */
  #gcmIv(ssrc: number, roc: number, seq: number): Buffer {
    const iv = this.#iv;
    saltIv(iv, this.#c.salt, 12);
    xorWord(iv, 2, ssrc);
    xorWord(iv, 6, roc);
    xorHalf(iv, 10, seq);
    return iv;
  }

  /** HMAC-SHA1 over the authenticated portion, then the ROC (RFC 3711 4.2: M = portion || ROC). */
  #hmac(authenticated: Buffer, roc: number): Buffer {
    this.#rocBytes.writeUInt32BE(roc, 0);
    return createHmac('sha1', this.#c.authKey!).update(authenticated).update(this.#rocBytes).digest();
  }
}
