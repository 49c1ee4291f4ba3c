import { randomInt } from 'node:crypto';
import { buildRtp } from './rtp-packet.ts';

/**
 * The outbound stream's identity and clock: one SSRC for the call, sequence numbers with
 * no gaps, a timestamp that advances every frame time (sent or not), and the marker bit on
 * the first packet after a pause (RFC 3551 talk-spurt start).
 */
export class RtpSender {
  readonly ssrc = randomInt(1, 0xffffffff);
  #seq = randomInt(0, 0x10000);
  #ts = randomInt(0, 0xffffffff);
  #sentLast = false;
  #packets = 0;
  #octets = 0;

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
