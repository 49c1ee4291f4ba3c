import { randomInt } from 'node:crypto';
import { buildRtp } from './rtp-packet.ts';

export interface SenderState {
  ssrc: number;
  seq: number;
  ts: number;
}

/**
 * Where a stream saved at `state` stands `elapsedMs` later, had it sent all along: the
 * timestamp moved with the clock and the sequence number as far as it could have, so the
 * far end sees loss, never a reused number (a replay to SRTP) or a new stream.
 */
export function senderAfter(state: SenderState, elapsedMs: number, clockRate: number, frameMs = 20): SenderState {
  const ms = Math.max(0, elapsedMs);
  return {
    ssrc: state.ssrc,
    seq: (state.seq + Math.ceil(ms / frameMs) + 1) & 0xffff,
    ts: (state.ts + Math.round((ms * clockRate) / 1000)) >>> 0,
  };
}

/**
 * The outbound stream's identity and clock: one SSRC for the call, sequence numbers with
 * no gaps, a timestamp that advances every frame time (sent or not), and the marker bit on
 * the first packet after a pause (RFC 3551 talk-spurt start).
 */
export class RtpSender {
  readonly ssrc: number;
  #seq: number;
  #ts: number;
  #sentLast = false;
  #packets = 0;
  #octets = 0;

  /** A new stream, or one that goes on where `resume` says (a restarted process's call). */
  constructor(resume?: SenderState) {
    this.ssrc = resume?.ssrc ?? randomInt(1, 0xffffffff);
    this.#seq = resume?.seq ?? randomInt(0, 0x10000);
    this.#ts = resume?.ts ?? randomInt(0, 0xffffffff);
  }

  /** Where the stream is now: the last sequence number used and the next timestamp. */
  get state(): SenderState {
    return { ssrc: this.ssrc, seq: this.#seq, ts: this.#ts };
  }

  get packets(): number {
    return this.#packets;
  }

  get octets(): number {
    return this.#octets;
  }

  /** One frame time passed; returns the packet to send when there was audio. */
  next(payloadType: number, payload: Uint8Array | null, frameSamples: number): Buffer | null {
    let packet: Buffer | null = null;
    if (payload) {
      this.#seq = (this.#seq + 1) & 0xffff;
      packet = buildRtp({ marker: !this.#sentLast, payloadType, sequenceNumber: this.#seq, timestamp: this.#ts, ssrc: this.ssrc }, payload);
      this.#packets++;
      this.#octets += payload.length;
    }
    this.#sentLast = payload !== null;
    this.#ts = (this.#ts + frameSamples) >>> 0;
    return packet;
  }
}
