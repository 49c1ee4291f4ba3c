import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { timingSafeEqual } from 'node:crypto';
import { FRAME_SAMPLES } from '../sessions/call-session.ts';
import type { TimelineFrame } from '../media-path/inbound-timeline.ts';

const TOKEN_BYTES = 16;
/** token, flags (bit 0: concealed), RTP timestamp, 20 ms of L16 at 8 kHz. */
const PACKET_BYTES = TOKEN_BYTES + 1 + 4 + FRAME_SAMPLES * 2;

/**
 * 20 ms frames between two processes of one machine over loopback UDP, one datagram per
 * frame. Only datagrams from the other end's port that carry the link's random token are
 * taken; the rest are counted.
 */
export class FrameLink {
  readonly #socket: Socket;
  readonly #token: Buffer;
  readonly #out = Buffer.alloc(PACKET_BYTES);
  #peerPort = 0;
  #onFrame: (f: TimelineFrame) => void = () => {};
  sent = 0;
  refused = 0;

  private constructor(socket: Socket, token: Buffer) {
    this.#socket = socket;
    this.#token = token;
    token.copy(this.#out, 0);
    socket.on('message', (msg, rinfo) => this.#receive(msg, rinfo));
    socket.on('error', () => {});
  }

  static async open(token: Buffer): Promise<FrameLink> {
    if (token.length !== TOKEN_BYTES) throw new Error('a frame link token is 16 bytes');
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new FrameLink(socket, token);
  }

  get udpPort(): number {
    return this.#socket.address().port;
  }

  get connected(): boolean {
    return this.#peerPort !== 0;
  }

  connect(peerPort: number, onFrame: (f: TimelineFrame) => void): void {
    this.#peerPort = peerPort;
    this.#onFrame = onFrame;
  }

  send(samples: Int16Array, timestamp: number, concealed: boolean): void {
    if (!this.#peerPort) return;
    const out = this.#out;
    out[TOKEN_BYTES] = concealed ? 1 : 0;
    out.writeUInt32BE(timestamp >>> 0, TOKEN_BYTES + 1);
    Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength).copy(out, TOKEN_BYTES + 5);
    this.#socket.send(out, this.#peerPort, '127.0.0.1');
    this.sent++;
  }

  close(): void {
    this.#peerPort = 0;
    this.#socket.close();
  }

  #receive(msg: Buffer, rinfo: RemoteInfo): void {
    if (
      !this.#peerPort ||
      rinfo.port !== this.#peerPort ||
      rinfo.address !== '127.0.0.1' ||
      msg.length !== PACKET_BYTES ||
      !timingSafeEqual(msg.subarray(0, TOKEN_BYTES), this.#token)
    ) {
      this.refused++;
      return;
    }
    const samples = new Int16Array(FRAME_SAMPLES);
    Buffer.from(samples.buffer).set(msg.subarray(TOKEN_BYTES + 5));
    this.#onFrame({ samples, timestamp: msg.readUInt32BE(TOKEN_BYTES + 1), concealed: (msg[TOKEN_BYTES]! & 1) === 1 });
  }
}
