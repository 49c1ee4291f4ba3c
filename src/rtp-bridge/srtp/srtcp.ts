import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import { invalidArgument } from '../../errors/media-error.ts';
import { deriveSessionKeys, sessionCrypto, type SessionCrypto, type SessionKeys } from './context.ts';
import { saltIv, xorWord } from './iv.ts';
import { ReplayWindow } from './replay-window.ts';
import { SUITE_PARAMS, type SrtpSuite, type SuiteParams } from './suites.ts';

export const LABEL_RTCP_ENCRYPTION = 0x03;
export const LABEL_RTCP_AUTH = 0x04;
export const LABEL_RTCP_SALT = 0x05;

/**
 * SRTCP's HMAC-SHA1 tag is 80 bits for both AES-CM suites: RFC 4568 6.2.1 defines
 * AES_CM_128_HMAC_SHA1_32 with a 32-bit tag for SRTP only (what libsrtp does too), and that
 * is what the service sends. Some stacks (ffmpeg's SDES suite of that name) tag SRTCP with
 * 32 bits too: on that suite a packet whose 80-bit reading fails is read once more as such,
 * which is no weaker than the suite's own SRTP.
 */
const CM_TAG_LENGTH = 10;
const CM_SHORT_TAG_LENGTH = 4;
const REPLAY = Symbol('replay');
const GCM_TAG_LENGTH = 16;
/** The fixed RTCP header and sender SSRC stay in the clear (RFC 3711 3.4). */
const HEADER = 8;
const INDEX_WORD = 4;
const E_FLAG = 0x80000000;
const MAX_INDEX = 0x7fffffff;
/** As for SRTP: enough for SSRC changes, yet bounded. */
const MAX_STREAMS = 16;

export interface SrtcpStreamState {
  ssrc: number;
  /** Receiving: the highest index authenticated. Sending: the last index used. */
  index: number;
}

/** SRTCP session keys (RFC 3711 4.3.2: labels 3, 4 and 5 of the same PRF as SRTP's). */
export function deriveRtcpSessionKeys(suite: SrtpSuite, masterKey: Buffer, masterSalt: Buffer): SessionKeys {
  return deriveSessionKeys(suite, masterKey, masterSalt, { encryption: LABEL_RTCP_ENCRYPTION, auth: LABEL_RTCP_AUTH, salt: LABEL_RTCP_SALT });
}

/**
 * SRTCP (RFC 3711 3.4; AEAD AES-GCM per RFC 7714 section 9) for one direction under one
 * master key. A packet is the RTCP header and sender SSRC in the clear, the rest encrypted,
 * then the E flag with the 31-bit SRTCP index, and the tag (AES-CM: HMAC-SHA1-80 over all
 * before it; GCM: the tag ends the ciphertext, before the index word, which is in the AAD).
 * unprotect() gets attacker-controlled input: it never throws, authenticates before it
 * decrypts, and only an authenticated packet creates or moves a stream's replay window.
 */
export class SrtcpSession {
  readonly suite: SrtpSuite;
  readonly #p: SuiteParams;
  /** The tag lengths a received packet is read with, in order. */
  readonly #tagLengths: readonly number[];
  #c: SessionCrypto;
  /** Receiving side: a replay window per SSRC. */
  readonly #windows = new Map<number, ReplayWindow>();
  /** Sending side: the last index used per SSRC (-1 before the first packet). */
  readonly #sent = new Map<number, number>();
  readonly #iv: Buffer;
  readonly #word = Buffer.alloc(INDEX_WORD);
  #authFailures = 0;
  #replays = 0;
  #lastDropWasReplay = false;

  constructor(suite: SrtpSuite, masterKey: Buffer, masterSalt: Buffer) {
    this.suite = suite;
    this.#p = SUITE_PARAMS[suite];
    this.#tagLengths = this.#p.aead ? [GCM_TAG_LENGTH] : this.#p.tagLength === CM_SHORT_TAG_LENGTH ? [CM_TAG_LENGTH, CM_SHORT_TAG_LENGTH] : [CM_TAG_LENGTH];
    this.#iv = Buffer.alloc(this.#p.aead ? 12 : 16);
    this.#c = sessionCrypto(suite, deriveRtcpSessionKeys(suite, masterKey, masterSalt));
  }

  /** A session from already derived session keys; for published test vectors that start there. */
  static fromSessionKeys(suite: SrtpSuite, keys: SessionKeys): SrtcpSession {
    const c = sessionCrypto(suite, keys);
    const p = SUITE_PARAMS[suite];
    const s = new SrtcpSession(suite, Buffer.alloc(p.keyLength), Buffer.alloc(p.saltLength));
    s.#c = c;
    return s;
  }

  /** Packets dropped as not authentic or not well-formed SRTCP. */
  get authFailures(): number {
    return this.#authFailures;
  }

  /** Packets dropped as replays or as older than the 64-packet window. */
  get replays(): number {
    return this.#replays;
  }

  /** Why the last unprotect() returned null: a replay (true) or a failed authentication. */
  get lastDropWasReplay(): boolean {
    return this.#lastDropWasReplay;
  }

  /** Where each stream's index stands: what a restarted process needs to go on. */
  streams(): SrtcpStreamState[] {
    const out: SrtcpStreamState[] = [];
    for (const [ssrc, w] of this.#windows) out.push({ ssrc, index: w.highest });
    for (const [ssrc, index] of this.#sent) out.push({ ssrc, index });
    return out;
  }

  /**
   * Streams saved by streams() in another process. Receiving: nothing at or before the saved
   * index is accepted again. Sending: the next index is `skip` past the saved one, for the
   * packets the old process may have sent after its snapshot (a reused index is a replay).
   */
  resume(states: readonly SrtcpStreamState[], skip = 0): void {
    for (const st of states.slice(-MAX_STREAMS)) {
      this.#windows.set(st.ssrc, ReplayWindow.full(st.index));
      this.#sent.set(st.ssrc, Math.min(MAX_INDEX, st.index + Math.max(0, skip)));
    }
  }

  /** Encrypts and authenticates one compound RTCP packet (sender side); returns a new buffer. */
  protect(rtcp: Buffer): Buffer {
    if (rtcp.length < HEADER || (rtcp[0]! & 0xc0) !== 0x80) throw invalidArgument('SRTCP protect: not an RTCP version 2 packet');
    const ssrc = rtcp.readUInt32BE(4);
    const index = (this.#sent.get(ssrc) ?? -1) + 1;
    if (index > MAX_INDEX) throw invalidArgument('SRTCP protect: the SRTCP index is exhausted; rekey');
    if (!this.#sent.has(ssrc) && this.#sent.size >= MAX_STREAMS) this.#sent.delete(this.#sent.keys().next().value!);
    this.#sent.set(ssrc, index);
    const len = rtcp.length;
    const word = (E_FLAG | index) >>> 0;
    if (this.#p.aead) {
      const out = Buffer.allocUnsafe(len + GCM_TAG_LENGTH + INDEX_WORD);
      rtcp.copy(out, 0, 0, HEADER);
      out.writeUInt32BE(word, len + GCM_TAG_LENGTH);
      const c = createCipheriv(this.#c.cipher as 'aes-128-gcm', this.#c.cipherKey, this.#gcmIv(ssrc, index), { authTagLength: GCM_TAG_LENGTH });
      c.setAAD(this.#aad(out.subarray(0, HEADER), word));
      c.update(rtcp.subarray(HEADER)).copy(out, HEADER);
      c.final();
      c.getAuthTag().copy(out, len);
      return out;
    }
    const out = Buffer.allocUnsafe(len + INDEX_WORD + CM_TAG_LENGTH);
    rtcp.copy(out, 0, 0, HEADER);
    createCipheriv('aes-128-ctr', this.#c.cipherKey, this.#cmIv(ssrc, index)).update(rtcp.subarray(HEADER)).copy(out, HEADER);
    out.writeUInt32BE(word, len);
    createHmac('sha1', this.#c.authKey!).update(out.subarray(0, len + INDEX_WORD)).digest().copy(out, len + INDEX_WORD, 0, CM_TAG_LENGTH);
    return out;
  }

  /**
   * Authenticates and decrypts one SRTCP packet; null when it fails, is a replay or is
   * malformed. A packet with the E flag clear (UNENCRYPTED_SRTCP) is authenticated only.
   */
  unprotect(srtcp: Buffer): Buffer | null {
    if (srtcp.length < HEADER || (srtcp[0]! & 0xc0) !== 0x80) return this.#fail();
    let replayed = false;
    for (const tagLength of this.#tagLengths) {
      const r = this.#open(srtcp, tagLength);
      if (r === REPLAY) replayed = true;
      else if (r) return r;
    }
    if (!replayed) return this.#fail();
    this.#replays++;
    this.#lastDropWasReplay = true;
    return null;
  }

  /** One reading of the packet with a tag of this length: the plain packet, a replay, or null. */
  #open(srtcp: Buffer, tagLength: number): Buffer | typeof REPLAY | null {
    const len = srtcp.length;
    if (len < HEADER + tagLength + INDEX_WORD) return null;
    const ssrc = srtcp.readUInt32BE(4);
    const word = srtcp.readUInt32BE(this.#p.aead ? len - INDEX_WORD : len - tagLength - INDEX_WORD);
    const index = word & MAX_INDEX;
    const encrypted = word >>> 31 === 1;
    const w = this.#windows.get(ssrc);
    // Replay check first (RFC 3711 3.3): it is cheaper than authentication.
    if (w?.seen(index)) return REPLAY;
    const plain = this.#p.aead ? this.#openGcm(srtcp, ssrc, index, word, encrypted) : this.#openCm(srtcp, ssrc, index, encrypted, tagLength);
    if (!plain) return null;
    if (w) w.accept(index);
    else {
      if (this.#windows.size >= MAX_STREAMS) this.#windows.delete(this.#windows.keys().next().value!);
      this.#windows.set(ssrc, new ReplayWindow(index));
    }
    return plain;
  }

  #fail(): null {
    this.#authFailures++;
    this.#lastDropWasReplay = false;
    return null;
  }

  #openCm(srtcp: Buffer, ssrc: number, index: number, encrypted: boolean, tagLength: number): Buffer | null {
    const bodyEnd = srtcp.length - INDEX_WORD - tagLength;
    const mac = createHmac('sha1', this.#c.authKey!).update(srtcp.subarray(0, bodyEnd + INDEX_WORD)).digest();
    if (!timingSafeEqual(mac.subarray(0, tagLength), srtcp.subarray(bodyEnd + INDEX_WORD))) return null;
    const out = Buffer.allocUnsafe(bodyEnd);
    if (!encrypted) {
      srtcp.copy(out, 0, 0, bodyEnd);
      return out;
    }
    srtcp.copy(out, 0, 0, HEADER);
    createDecipheriv('aes-128-ctr', this.#c.cipherKey, this.#cmIv(ssrc, index)).update(srtcp.subarray(HEADER, bodyEnd)).copy(out, HEADER);
    return out;
  }

  #openGcm(srtcp: Buffer, ssrc: number, index: number, word: number, encrypted: boolean): Buffer | null {
    const tagAt = srtcp.length - INDEX_WORD - GCM_TAG_LENGTH;
    try {
      const d = createDecipheriv(this.#c.cipher as 'aes-128-gcm', this.#c.cipherKey, this.#gcmIv(ssrc, index), { authTagLength: GCM_TAG_LENGTH });
      d.setAuthTag(srtcp.subarray(tagAt, tagAt + GCM_TAG_LENGTH));
      const out = Buffer.allocUnsafe(tagAt);
      srtcp.copy(out, 0, 0, HEADER);
      if (encrypted) {
        d.setAAD(this.#aad(srtcp.subarray(0, HEADER), word));
        d.update(srtcp.subarray(HEADER, tagAt)).copy(out, HEADER);
      } else {
        // RFC 7714 9.2: unencrypted, the whole packet and the index word are the AAD.
        d.setAAD(this.#aad(srtcp.subarray(0, tagAt), word));
        srtcp.copy(out, HEADER, HEADER, tagAt);
      }
      d.final(); // throws when the tag does not verify; the plaintext is discarded then
      return out;
    } catch {
      return null;
    }
  }

  #aad(head: Buffer, word: number): Buffer {
    this.#word.writeUInt32BE(word, 0);
    return Buffer.concat([head, this.#word]);
  }

  /** AES-CM IV (RFC 3711 4.1.1 for SRTCP): (k_s * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16). */
  #cmIv(ssrc: number, index: number): Buffer {
    const iv = this.#iv;
    saltIv(iv, this.#c.salt, 14);
    xorWord(iv, 4, ssrc);
    xorWord(iv, 10, index);
    return iv;
  }

  /** GCM IV (RFC 7714 9.1): (00 00 || SSRC || 00 00 || 0 || index) XOR the 96-bit session salt. */
  #gcmIv(ssrc: number, index: number): Buffer {
    const iv = this.#iv;
    saltIv(iv, this.#c.salt, 12);
    xorWord(iv, 2, ssrc);
    xorWord(iv, 8, index);
    return iv;
  }
}
