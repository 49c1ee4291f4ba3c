import { createSocket, type Socket } from 'node:dgram';
import { encodeG711, decodeG711, G711_PAYLOAD_TYPE, type G711Codec } from '../../src/codecs/g711.ts';
import { parseRtp, buildRtp, isRtcpPacket } from '../../src/rtp-bridge/rtp-packet.ts';

export interface ReceivedPacket {
  at: number;
  payloadType: number;
  seq: number;
  ts: number;
  ssrc: number;
  marker: boolean;
  payload: Buffer;
  raw: Buffer;
}

/** A phone made of a UDP socket: sends paced G.711/DTMF RTP, records what comes back. */
export class RtpPeer {
  readonly socket: Socket;
  readonly received: ReceivedPacket[] = [];
  /** RTCP the service sent (multiplexed on the RTP port), kept apart from the RTP as a phone does. */
  readonly rtcp: { at: number; raw: Buffer }[] = [];
  port = 0;
  #seq = 1000;
  #ts = 50_000;
  ssrc = 0x0badcafe;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (raw) => {
      if (isRtcpPacket(raw)) {
        this.rtcp.push({ at: performance.now(), raw });
        return;
      }
      const h = parseRtp(raw);
      if (!h) return;
      this.received.push({
        at: performance.now(),
        payloadType: h.payloadType,
        seq: h.sequenceNumber,
        ts: h.timestamp,
        ssrc: h.ssrc,
        marker: h.marker,
        payload: raw.subarray(h.payloadOffset, h.payloadOffset + h.payloadLength),
        raw,
      });
    });
  }

  static async open(): Promise<RtpPeer> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const p = new RtpPeer(s);
    p.port = s.address().port;
    return p;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  sendRaw(buf: Buffer, port: number): void {
    this.socket.send(buf, port, '127.0.0.1');
  }

  /** Sends PCM as 20 ms G.711 packets in real time; `drop(k)` true skips packet k (loss). */
  async sendPcm(pcm: Int16Array, port: number, opts: { codec?: G711Codec; drop?: (k: number) => boolean } = {}): Promise<number> {
    const codec = opts.codec ?? 'PCMU';
    const start = performance.now();
    let k = 0;
    for (let off = 0; off + 160 <= pcm.length; off += 160, k++) {
      const payload = encodeG711(codec, pcm.subarray(off, off + 160));
      this.#seq = (this.#seq + 1) & 0xffff;
      this.#ts = (this.#ts + 160) >>> 0;
      if (!opts.drop?.(k)) {
        this.sendRaw(buildRtp({ marker: k === 0, payloadType: G711_PAYLOAD_TYPE[codec], sequenceNumber: this.#seq, timestamp: this.#ts, ssrc: this.ssrc }, payload), port);
      }
      const wait = start + (k + 1) * 20 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    return k;
  }

  /** RFC 4733 digits: a few 50 ms update packets each, then the end packet three times. */
  async sendDtmf(digits: string, port: number, payloadType = 101): Promise<void> {
    const codes = '0123456789*#ABCD';
    for (const d of digits) {
      const ev = codes.indexOf(d);
      this.#ts = (this.#ts + 800) >>> 0;
      this.#seq = (this.#seq + 1) & 0xffff;
      for (let i = 1; i <= 5; i++) {
        const end = i >= 3;
        const payload = Buffer.from([ev, (end ? 0x80 : 0) | 10, (i * 400) >> 8, (i * 400) & 0xff]);
        this.sendRaw(buildRtp({ marker: i === 1, payloadType, sequenceNumber: this.#seq, timestamp: this.#ts, ssrc: this.ssrc }, payload), port);
        this.#seq = (this.#seq + 1) & 0xffff;
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 60));
    }
  }

  /** The received audio of one payload type decoded, in sequence order. */
  decoded(codec: G711Codec = 'PCMU'): Int16Array {
    const pkts = this.received.filter((p) => p.payloadType === G711_PAYLOAD_TYPE[codec]);
    const out = new Int16Array(pkts.reduce((n, p) => n + p.payload.length, 0));
    let off = 0;
    for (const p of pkts) {
      out.set(decodeG711(codec, p.payload), off);
      off += p.payload.length;
    }
    return out;
  }

  close(): void {
    this.socket.close();
  }
}
