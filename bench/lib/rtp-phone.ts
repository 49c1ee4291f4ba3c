// One far end of a call in a load generator: a UDP socket that sends RTP to the service's
// port and counts what comes back (packets, sequence gaps, inter-arrival intervals).
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { buildRtp } from '../../src/rtp-bridge/rtp-packet.ts';

export class RtpPhone {
  readonly #socket: Socket;
  readonly target: number;
  readonly ssrc: number;
  #seq = 0;
  #ts = 0;
  #lastAt = 0;
  #lastSeq = -1;
  /** Counted only while `measuring` is on. */
  measuring = false;
  received = 0;
  gaps = 0;
  intervals: number[] = [];

  static async open(target: number, ssrc: number, onPacket?: (msg: Buffer, at: number) => void): Promise<RtpPhone> {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    return new RtpPhone(socket, target, ssrc, onPacket);
  }

  private constructor(socket: Socket, target: number, ssrc: number, onPacket?: (msg: Buffer, at: number) => void) {
    this.#socket = socket;
    this.target = target;
    this.ssrc = ssrc;
    socket.on('message', (msg) => {
      // RTCP from the service (multiplexed on the RTP port) is no audio packet.
      if (msg.length >= 2 && msg[1]! >= 192 && msg[1]! <= 223) return;
      const now = performance.now();
      const seq = msg.readUInt16BE(2);
      if (this.measuring) {
        this.received++;
        if (this.#lastAt > 0) this.intervals.push(now - this.#lastAt);
        if (this.#lastSeq >= 0 && ((seq - this.#lastSeq) & 0xffff) !== 1) this.gaps++;
      }
      this.#lastAt = now;
      this.#lastSeq = seq;
      onPacket?.(msg, now);
    });
  }

  get port(): number {
    return this.#socket.address().port;
  }

  /** The next packet of the stream: `ticks` is its timestamp advance. */
  send(payloadType: number, payload: Uint8Array, ticks: number): void {
    this.#seq = (this.#seq + 1) & 0xffff;
    this.#ts = (this.#ts + ticks) >>> 0;
    this.#socket.send(buildRtp({ marker: false, payloadType, sequenceNumber: this.#seq, timestamp: this.#ts, ssrc: this.ssrc }, payload), this.target, '127.0.0.1');
  }

  startMeasuring(): void {
    this.received = 0;
    this.gaps = 0;
    this.intervals = [];
    this.measuring = true;
  }

  close(): void {
    this.#socket.close();
  }
}

export function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? NaN;
}

/** What a set of phones received over `seconds` at 50 packets/s each. */
export function summarize(phones: RtpPhone[], seconds: number): { received: number; expected: number; seqGaps: number; p01: number; p50: number; p99: number } {
  const iv = phones.flatMap((p) => p.intervals).sort((x, y) => x - y);
  return {
    received: phones.reduce((n, p) => n + p.received, 0),
    expected: phones.length * seconds * 50,
    seqGaps: phones.reduce((n, p) => n + p.gaps, 0),
    p01: percentile(iv, 0.01),
    p50: percentile(iv, 0.5),
    p99: percentile(iv, 0.99),
  };
}
