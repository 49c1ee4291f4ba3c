import { seqDelta } from './rtp-packet.ts';

export interface SourceAddress {
  address: string;
  port: number;
}

/**
 * How a call decides whose packets are its phone's:
 * - `strict` (the default): the first source is learned, then locked; another source is
 *   taken only when it proves it is the same stream (SRTP authentication, or the locked
 *   SSRC with the next sequence numbers: a NAT rebinding) or after an explicit re-target.
 * - `latch`: any source replaces one that was silent for a second (symmetric RTP without
 *   protection; an attacker who sprays the port range while the caller is quiet takes the
 *   call's audio). Only for networks where that cannot happen.
 */
export type SourcePolicy = 'strict' | 'latch';

export interface SourceLockOptions {
  policy: SourcePolicy;
  /**
   * After the first packet (and after a re-target) a packet from the signalled address
   * may still replace a learned source for this long: SDP named it, a stray did not.
   */
  learningMs: number;
}

export type SourceVerdict = 'accept' | 'moved' | 'reject';

/** How far ahead of the locked stream a NAT-rebound packet's sequence number may be. */
const MAX_SEQ_JUMP = 100;
const LATCH_SILENCE_MS = 1000;

/**
 * The endpoint-learning state of one call (pure: no socket, no clock of its own). Packets
 * it rejects must not touch the call: codec, SSRC, timeline, DTMF, inactivity all follow
 * accepted packets only.
 */
export class SourceLock {
  readonly #o: SourceLockOptions;
  #source: (SourceAddress & { ssrc: number; seq: number; lastMs: number }) | null = null;
  /** The address signalling named (set_target); a source from it is preferred while learning. */
  #signalled: SourceAddress | null = null;
  #learningUntil = 0;

  constructor(opts: SourceLockOptions) {
    this.#o = opts;
  }

  get source(): SourceAddress | null {
    return this.#source;
  }

  /** The locked stream as a restarted process must know it: who, and where its sequence was. */
  get locked(): (SourceAddress & { ssrc: number; seq: number }) | null {
    const s = this.#source;
    return s ? { address: s.address, port: s.port, ssrc: s.ssrc, seq: s.seq } : null;
  }

  /** Locks a stream learned by another process (a call resumed after a crash): no new learning window. */
  restore(source: SourceAddress & { ssrc: number; seq: number }, signalled: SourceAddress | null, nowMs: number): void {
    this.#source = { ...source, lastMs: nowMs };
    this.#signalled = signalled;
    this.#learningUntil = 0;
  }

  /** Signalling named a (new) far end: learn again, preferring packets from its address. */
  retarget(to: SourceAddress, nowMs: number): void {
    this.#signalled = to;
    this.#source = null;
    this.#learningUntil = nowMs + this.#o.learningMs;
  }

  /**
   * Whether a well-formed packet from `from` belongs to the call. `authenticated`: it
   * passed SRTP authentication and the replay check, which only the phone's key can do.
   */
  check(from: SourceAddress, ssrc: number, seq: number, authenticated: boolean, nowMs: number): SourceVerdict {
    const s = this.#source;
    if (!s) {
      this.#lock(from, ssrc, seq, nowMs);
      if (this.#learningUntil < nowMs) this.#learningUntil = nowMs + this.#o.learningMs;
      return 'moved';
    }
    if (s.address === from.address && s.port === from.port) {
      s.ssrc = ssrc;
      s.seq = seq;
      s.lastMs = nowMs;
      return 'accept';
    }
    if (this.#o.policy === 'latch') {
      if (nowMs - s.lastMs <= LATCH_SILENCE_MS) return 'reject';
      this.#lock(from, ssrc, seq, nowMs);
      return 'moved';
    }
    const fromSignalled = this.#signalled !== null && from.address === this.#signalled.address && s.address !== this.#signalled.address;
    const continues = ssrc === s.ssrc && seqDelta(seq, s.seq) > 0 && seqDelta(seq, s.seq) <= MAX_SEQ_JUMP;
    if (authenticated || continues || (fromSignalled && nowMs <= this.#learningUntil)) {
      this.#lock(from, ssrc, seq, nowMs);
      return 'moved';
    }
    return 'reject';
  }

  #lock(from: SourceAddress, ssrc: number, seq: number, nowMs: number): void {
    this.#source = { address: from.address, port: from.port, ssrc, seq, lastMs: nowMs };
  }
}
