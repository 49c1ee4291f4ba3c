import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createCipheriv, createDecipheriv, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { literalLookup } from '../util/literal-lookup.ts';
import { FRAME_SAMPLES } from '../sessions/call-session.ts';
import type { TimelineFrame } from '../media-path/inbound-timeline.ts';

const TOKEN_BYTES = 16;
const PCM_BYTES = FRAME_SAMPLES * 2;
/** Loopback: token, flags (bit 0: concealed), RTP timestamp, 20 ms of L16 at 8 kHz. */
const LOOPBACK_BYTES = TOKEN_BYTES + 1 + 4 + PCM_BYTES;
/** Network: role, sequence, RTP timestamp, flags (the authenticated header), the sealed samples, the GCM tag. */
const SEALED_HEADER = 1 + 4 + 4 + 1;
const TAG_BYTES = 16;
const SEALED_BYTES = SEALED_HEADER + PCM_BYTES + TAG_BYTES;

export interface LinkPeer {
  address: string;
  port: number;
}

/**
 * Where a link runs. `loopback`: two processes of one machine, bound to 127.0.0.1, frames
 * marked with the token. `network`: two machines, bound to `bind`; each frame is sealed with
 * AES-128-GCM under the token, so nobody on the path reads, forges or replays one. The two
 * ends of a network link take different roles: the role is part of every nonce.
 */
export type LinkMode = { kind: 'loopback' } | { kind: 'network'; bind: string; role: 0 | 1 };

const LOOPBACK: LinkMode = { kind: 'loopback' };

/**
 * 20 ms frames between two processes, one datagram per frame. Only datagrams from the other
 * end's address and port that prove the link's token are taken; the rest are counted.
 */
export class FrameLink {
  readonly #socket: Socket;
  readonly #token: Buffer;
  /** The token as a key object: a raw key would be imported again for every frame. */
  readonly #key: KeyObject;
  readonly #mode: LinkMode;
  readonly #out: Buffer;
  #peer: LinkPeer | null = null;
  #onFrame: (f: TimelineFrame) => void = () => {};
  /** Network links: the next sequence number sent, and the highest one taken (frames only move forward). */
  #seq = 0;
  #highest = 0;
  sent = 0;
  refused = 0;

  private constructor(socket: Socket, token: Buffer, mode: LinkMode) {
    this.#socket = socket;
    this.#token = token;
    this.#key = createSecretKey(token);
    this.#mode = mode;
    if (mode.kind === 'loopback') {
      this.#out = Buffer.alloc(LOOPBACK_BYTES);
      token.copy(this.#out, 0);
    } else {
      this.#out = Buffer.alloc(SEALED_BYTES);
    }
    socket.on('message', (msg, rinfo) => this.#receive(msg, rinfo));
    socket.on('error', () => {});
  }

  static async open(token: Buffer, mode: LinkMode = LOOPBACK): Promise<FrameLink> {
    if (token.length !== TOKEN_BYTES) throw new Error('a frame link token is 16 bytes');
    const bind = mode.kind === 'loopback' ? '127.0.0.1' : mode.bind;
    // Sends reach the kernel inside send(): the one output buffer is written again for the next frame.
    const socket = createSocket({ type: isIP(bind) === 6 ? 'udp6' : 'udp4', lookup: literalLookup });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, bind, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new FrameLink(socket, token, mode);
  }

  get udpPort(): number {
    return this.#socket.address().port;
  }

  get connected(): boolean {
    return this.#peer !== null;
  }

  connect(peer: LinkPeer, onFrame: (f: TimelineFrame) => void): void {
    this.#peer = { address: peer.address, port: peer.port };
    this.#onFrame = onFrame;
  }

  send(samples: Int16Array, timestamp: number, concealed: boolean): void {
    const peer = this.#peer;
    if (!peer) return;
    const out = this.#out;
    const pcm = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
    const mode = this.#mode;
    if (mode.kind === 'loopback') {
      out[TOKEN_BYTES] = concealed ? 1 : 0;
      out.writeUInt32BE(timestamp >>> 0, TOKEN_BYTES + 1);
      pcm.copy(out, TOKEN_BYTES + 5);
    } else {
      this.#seq = (this.#seq + 1) >>> 0;
      out[0] = mode.role;
      out.writeUInt32BE(this.#seq, 1);
      out.writeUInt32BE(timestamp >>> 0, 5);
      out[9] = concealed ? 1 : 0;
      const c = createCipheriv('aes-128-gcm', this.#key, nonce(mode.role, this.#seq), { authTagLength: TAG_BYTES });
      c.setAAD(out.subarray(0, SEALED_HEADER));
      c.update(pcm).copy(out, SEALED_HEADER);
      c.final();
      c.getAuthTag().copy(out, SEALED_HEADER + PCM_BYTES);
    }
    this.#socket.send(out, peer.port, peer.address);
    this.sent++;
  }

  close(): void {
    this.#peer = null;
    this.#socket.close();
  }

  #receive(msg: Buffer, rinfo: RemoteInfo): void {
    const peer = this.#peer;
    if (!peer || rinfo.port !== peer.port || rinfo.address !== peer.address) {
      this.refused++;
      return;
    }
    const frame = this.#mode.kind === 'loopback' ? this.#openLoopback(msg) : this.#openSealed(msg, this.#mode.role);
    if (!frame) {
      this.refused++;
      return;
    }
    this.#onFrame(frame);
  }

  #openLoopback(msg: Buffer): TimelineFrame | null {
    if (msg.length !== LOOPBACK_BYTES || !timingSafeEqual(msg.subarray(0, TOKEN_BYTES), this.#token)) return null;
    const samples = new Int16Array(FRAME_SAMPLES);
    Buffer.from(samples.buffer).set(msg.subarray(TOKEN_BYTES + 5));
    return { samples, timestamp: msg.readUInt32BE(TOKEN_BYTES + 1), concealed: (msg[TOKEN_BYTES]! & 1) === 1 };
  }

  #openSealed(msg: Buffer, ownRole: 0 | 1): TimelineFrame | null {
    if (msg.length !== SEALED_BYTES || msg[0] !== 1 - ownRole) return null;
    const seq = msg.readUInt32BE(1);
    // A replayed or reordered frame is never played: a late frame is a lost one to the feed.
    if (seq <= this.#highest) return null;
    const samples = new Int16Array(FRAME_SAMPLES);
    try {
      const d = createDecipheriv('aes-128-gcm', this.#key, nonce(msg[0] as 0 | 1, seq), { authTagLength: TAG_BYTES });
      d.setAAD(msg.subarray(0, SEALED_HEADER));
      d.setAuthTag(msg.subarray(SEALED_HEADER + PCM_BYTES));
      const plain = d.update(msg.subarray(SEALED_HEADER, SEALED_HEADER + PCM_BYTES));
      d.final();
      Buffer.from(samples.buffer).set(plain);
    } catch {
      return null;
    }
    this.#highest = seq;
    return { samples, timestamp: msg.readUInt32BE(5), concealed: (msg[9]! & 1) === 1 };
  }
}

/** 96 bits never used twice under one token: the sender's role, then its sequence number. */
function nonce(role: 0 | 1, seq: number): Buffer {
  const n = Buffer.alloc(12);
  n[0] = role;
  n.writeUInt32BE(seq, 8);
  return n;
}
