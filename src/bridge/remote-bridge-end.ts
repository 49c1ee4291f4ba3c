import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { timingSafeEqual } from 'node:crypto';
import { FRAME_SAMPLES, type CallSession, type CallTap, type CloseReason } from '../sessions/call-session.ts';
import { TypedEmitter } from '../util/typed-emitter.ts';
import { BridgeFeed, type FeedStats } from './bridge-feed.ts';
import type { BridgeCloseReason } from './call-bridge.ts';

const TOKEN_BYTES = 16;
/** token, flags (bit 0: concealed), RTP timestamp, 20 ms of L16 at 8 kHz. */
const PACKET_BYTES = TOKEN_BYTES + 1 + 4 + FRAME_SAMPLES * 2;

/**
 * This shard's half of a bridge whose other call another shard carries. The local call's
 * caller frames go to the other half over loopback UDP, one datagram per 20 ms frame; the
 * other call's frames arrive the same way and play into the local mix through the same
 * jitter-absorbing feed a bridge within one shard uses. Only datagrams from the other
 * half's port that carry the bridge's random token are taken.
 */
export class RemoteBridgeEnd extends TypedEmitter<{ close: [BridgeCloseReason] }> {
  readonly session: CallSession;
  readonly createdAtMs = performance.now();
  readonly #socket: Socket;
  readonly #token: Buffer;
  readonly #feed = new BridgeFeed();
  readonly #tap: CallTap;
  readonly #out = Buffer.alloc(PACKET_BYTES);
  readonly #peerLabel: string;
  #peerPort = 0;
  #sent = 0;
  #refused = 0;
  #closed = false;

  private constructor(session: CallSession, socket: Socket, token: Buffer, peerLabel: string) {
    super(session.log);
    this.session = session;
    this.#socket = socket;
    this.#token = token;
    this.#peerLabel = peerLabel;
    token.copy(this.#out, 0);
    this.#tap = {
      inbound: (f) => this.#send(f.samples, f.timestamp, f.concealed),
      callClosed: (reason: CloseReason) => this.close(reason === 'shutdown' ? 'shutdown' : 'call_closed'),
    };
    socket.on('message', (msg, rinfo) => this.#receive(msg, rinfo));
    socket.on('error', () => {});
  }

  /** Binds this half's socket; frames flow once `connect` names the other half's port. */
  static async open(session: CallSession, token: Buffer, peerLabel: string): Promise<RemoteBridgeEnd> {
    if (token.length !== TOKEN_BYTES) throw new Error('a bridge token is 16 bytes');
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new RemoteBridgeEnd(session, socket, token, peerLabel);
  }

  get udpPort(): number {
    return this.#socket.address().port;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Frames to the other call (none counted here: the other half counts what it plays), from it. */
  get stats(): { aToB: FeedStats; bToA: FeedStats } {
    return { aToB: { frames: this.#sent, dropped: 0, trimmed: 0, underruns: 0 }, bToA: this.#feed.stats };
  }

  connect(peerPort: number): void {
    if (this.#closed || this.#peerPort) return;
    this.#peerPort = peerPort;
    this.session.addTap(this.#tap);
    this.session.addSource(this.#feed);
    this.session.log.info(
      { event: 'BRIDGE_CREATED', attributes: { 'rtp.port': this.session.port, 'bridge.peer': this.#peerLabel, 'bridge.across_shards': true } },
      'calls bridged across media shards',
    );
  }

  close(reason: BridgeCloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.session.removeTap(this.#tap);
    this.session.removeSource(this.#feed);
    this.#socket.close();
    const f = this.#feed.stats;
    this.session.log.info(
      {
        event: 'BRIDGE_CLOSED',
        attributes: {
          'rtp.port': this.session.port,
          'bridge.peer': this.#peerLabel,
          reason,
          'bridge.duration_ms': Math.round(performance.now() - this.createdAtMs),
          'bridge.sent': this.#sent,
          'bridge.received': `${f.frames}/${f.dropped}/${f.trimmed}/${f.underruns}`,
          'bridge.refused': this.#refused,
        },
      },
      `bridge closed (${reason})`,
    );
    this.safeEmit('close', reason);
    this.removeAllListeners();
  }

  #send(samples: Int16Array, timestamp: number, concealed: boolean): void {
    if (this.#closed || !this.#peerPort) return;
    const out = this.#out;
    out[TOKEN_BYTES] = concealed ? 1 : 0;
    out.writeUInt32BE(timestamp >>> 0, TOKEN_BYTES + 1);
    Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength).copy(out, TOKEN_BYTES + 5);
    this.#socket.send(out, this.#peerPort, '127.0.0.1');
    this.#sent++;
  }

  #receive(msg: Buffer, rinfo: RemoteInfo): void {
    if (
      !this.#peerPort ||
      rinfo.port !== this.#peerPort ||
      rinfo.address !== '127.0.0.1' ||
      msg.length !== PACKET_BYTES ||
      !timingSafeEqual(msg.subarray(0, TOKEN_BYTES), this.#token)
    ) {
      this.#refused++;
      return;
    }
    const samples = new Int16Array(FRAME_SAMPLES);
    Buffer.from(samples.buffer).set(msg.subarray(TOKEN_BYTES + 5));
    this.#feed.push({ samples, timestamp: msg.readUInt32BE(TOKEN_BYTES + 1), concealed: (msg[TOKEN_BYTES]! & 1) === 1 });
  }
}
