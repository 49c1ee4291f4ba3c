import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { isRtcpPacket, parseRtp, type RtpHeader } from './rtp-packet.ts';

export interface RtpAddress {
  address: string;
  port: number;
}

/** Per-direction packet protection (SRTP); absent for plain RTP. */
export interface PacketProtection {
  protect(packet: Buffer): Buffer;
  /** The plain packet, or null when it fails authentication or is a replay. */
  unprotect(packet: Buffer): Buffer | null;
}

export interface EndpointCounters {
  packetsIn: number;
  bytesIn: number;
  packetsOut: number;
  bytesOut: number;
  rtcpIn: number;
  malformed: number;
  authFailures: number;
  sendErrors: number;
}

export type PacketHandler = (header: RtpHeader, packet: Buffer, from: RemoteInfo) => void;

/** A silent latched source may be replaced by a new one after this long (re-INVITE, NAT rebinding). */
const RELATCH_AFTER_MS = 1000;

/**
 * The call's UDP socket toward the phone. It owns the socket: it learns where to send
 * (explicit target, else the source of the first packet: symmetric RTP / comedia),
 * unprotects and protects SRTP, and hands parsed RTP to one handler.
 */
export class RtpEndpoint {
  readonly port: number;
  readonly counters: EndpointCounters = { packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0, rtcpIn: 0, malformed: 0, authFailures: 0, sendErrors: 0 };
  readonly #socket: Socket;
  #target: RtpAddress | null = null;
  #explicit = false;
  #lastFromTargetMs = 0;
  #inbound: PacketProtection | null = null;
  #outbound: PacketProtection | null = null;
  #handler: PacketHandler | null = null;
  #closed = false;

  static bind(opts: { port: number; address: string }): Promise<RtpEndpoint> {
    const socket = createSocket({ type: isIP(opts.address) === 6 ? 'udp6' : 'udp4', reuseAddr: false });
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(err);
      };
      socket.once('error', onError);
      socket.bind(opts.port, opts.address, () => {
        socket.off('error', onError);
        resolve(new RtpEndpoint(socket, opts.port));
      });
    });
  }

  private constructor(socket: Socket, port: number) {
    this.#socket = socket;
    this.port = port;
    socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
    // A send to an unreachable peer surfaces as an async socket error; it must not end the call.
    socket.on('error', () => {
      this.counters.sendErrors++;
    });
  }

  get target(): RtpAddress | null {
    return this.#target;
  }

  onPacket(handler: PacketHandler): void {
    this.#handler = handler;
  }

  setProtection(inbound: PacketProtection | null, outbound: PacketProtection | null): void {
    this.#inbound = inbound;
    this.#outbound = outbound;
  }

  /** The far end named by signalling; it is kept even when packets come from elsewhere. */
  setTarget(target: RtpAddress): void {
    this.#target = target;
    this.#explicit = true;
  }

  send(packet: Buffer): void {
    const t = this.#target;
    if (!t || this.#closed) return;
    const wire = this.#outbound ? this.#outbound.protect(packet) : packet;
    this.counters.packetsOut++;
    this.counters.bytesOut += wire.length;
    this.#socket.send(wire, t.port, t.address);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handler = null;
    this.#socket.close();
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    this.counters.packetsIn++;
    this.counters.bytesIn += msg.length;
    if (isRtcpPacket(msg)) {
      this.counters.rtcpIn++;
      return;
    }
    let packet: Buffer | null = msg;
    if (this.#inbound) {
      packet = this.#inbound.unprotect(msg);
      if (!packet) {
        this.counters.authFailures++;
        return;
      }
    }
    const header = parseRtp(packet);
    if (!header) {
      this.counters.malformed++;
      return;
    }
    this.#latch(rinfo);
    this.#handler?.(header, packet, rinfo);
  }

  #latch(from: RemoteInfo): void {
    if (this.#explicit) return;
    const now = performance.now();
    const t = this.#target;
    if (t && t.address === from.address && t.port === from.port) {
      this.#lastFromTargetMs = now;
      return;
    }
    if (!t || now - this.#lastFromTargetMs > RELATCH_AFTER_MS) {
      this.#target = { address: from.address, port: from.port };
      this.#lastFromTargetMs = now;
    }
  }
}
