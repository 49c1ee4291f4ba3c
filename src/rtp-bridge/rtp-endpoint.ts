import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { literalLookup } from '../util/literal-lookup.ts';
import { isRtcpPacket, parseRtp, type RtpHeader } from './rtp-packet.ts';
import { SourceLock, type SourceLockOptions } from './source-lock.ts';

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
  rtcpOut: number;
  malformed: number;
  /** Well-formed packets from a source that is not the call's phone (dropped, never used). */
  foreignSource: number;
  /** Times the phone's source moved to a new address after proving itself (NAT rebinding). */
  sourceMoves: number;
  authFailures: number;
  sendErrors: number;
}

export interface EndpointRouting {
  target: RtpAddress | null;
  /** The target came from signalling (set_target), not from the phone's packets. */
  explicit: boolean;
  source: (RtpAddress & { ssrc: number; seq: number }) | null;
}

export type PacketHandler = (header: RtpHeader, packet: Buffer, from: RemoteInfo) => void;
/** RTCP multiplexed on the RTP port (RFC 5761) from the phone's address; plain RTP legs only. */
export type RtcpHandler = (packet: Buffer) => void;

const DEFAULT_SOURCE: SourceLockOptions = { policy: 'strict', learningMs: 3000 };

/**
 * The call's UDP socket toward the phone. It owns the socket: it learns which source is the
 * phone and locks it (see SourceLock), where to send (explicit target, else that source:
 * symmetric RTP / comedia), unprotects and protects SRTP, and hands the phone's parsed RTP
 * to one handler. Packets from anyone else are counted and go no further.
 */
export class RtpEndpoint {
  readonly port: number;
  readonly counters: EndpointCounters = { packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0, rtcpIn: 0, rtcpOut: 0, malformed: 0, foreignSource: 0, sourceMoves: 0, authFailures: 0, sendErrors: 0 };
  readonly #socket: Socket;
  readonly #lock: SourceLock;
  #target: RtpAddress | null = null;
  #explicit = false;
  #inbound: PacketProtection | null = null;
  #outbound: PacketProtection | null = null;
  #handler: PacketHandler | null = null;
  #rtcp: RtcpHandler | null = null;
  #lockedOnce = false;
  #closed = false;

  static bind(opts: { port: number; address: string; source?: SourceLockOptions }): Promise<RtpEndpoint> {
    const socket = createSocket({ type: isIP(opts.address) === 6 ? 'udp6' : 'udp4', reuseAddr: false, lookup: literalLookup });
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(err);
      };
      socket.once('error', onError);
      socket.bind(opts.port, opts.address, () => {
        socket.off('error', onError);
        resolve(new RtpEndpoint(socket, opts.port, opts.source ?? DEFAULT_SOURCE));
      });
    });
  }

  private constructor(socket: Socket, port: number, source: SourceLockOptions) {
    this.#socket = socket;
    this.port = port;
    this.#lock = new SourceLock(source);
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

  onRtcp(handler: RtcpHandler): void {
    this.#rtcp = handler;
  }

  setProtection(inbound: PacketProtection | null, outbound: PacketProtection | null): void {
    this.#inbound = inbound;
    this.#outbound = outbound;
  }

  /** Where the phone's packets come from (null until the first one). */
  get source(): RtpAddress | null {
    return this.#lock.source;
  }

  /**
   * The far end named by signalling: sending goes there even when packets come from
   * elsewhere, and the phone's source is learned again (a re-INVITE, a transfer).
   */
  setTarget(target: RtpAddress): void {
    this.#target = target;
    this.#explicit = true;
    this.#lock.retarget(target, performance.now());
  }

  /** Where sending goes and whose packets are the phone's, for a process that resumes the call. */
  get routing(): EndpointRouting {
    return { target: this.#target, explicit: this.#explicit, source: this.#lock.locked };
  }

  /** Routing saved by another process: the phone is not learned again, it goes on. */
  restoreRouting(r: EndpointRouting): void {
    this.#target = r.target;
    this.#explicit = r.explicit;
    if (r.source) {
      this.#lock.restore(r.source, r.explicit ? r.target : null, performance.now());
      this.#lockedOnce = true;
    }
  }

  send(packet: Buffer): void {
    const t = this.#target;
    if (!t || this.#closed) return;
    const wire = this.#outbound ? this.#outbound.protect(packet) : packet;
    this.counters.packetsOut++;
    this.counters.bytesOut += wire.length;
    this.#socket.send(wire, t.port, t.address);
  }

  /** RTCP goes where RTP goes, multiplexed on the RTP port, on plain RTP legs (SRTCP is not sent). */
  get canSendRtcp(): boolean {
    return this.#target !== null && !this.#closed && this.#outbound === null;
  }

  sendRtcp(packet: Buffer): void {
    const t = this.#target;
    if (!t || this.#closed || this.#outbound) return;
    this.counters.rtcpOut++;
    this.#socket.send(packet, t.port, t.address);
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
      // SRTCP is not read yet. Plain RTCP only from the phone: its RTP port (rtcp-mux), or the
      // port after it, where a stack that keeps an RTCP socket sends from.
      const src = this.#lock.source;
      if (!this.#inbound && src?.address === rinfo.address && (rinfo.port === src.port || rinfo.port === src.port + 1)) this.#rtcp?.(msg);
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
    const verdict = this.#lock.check(rinfo, header.ssrc, header.sequenceNumber, this.#inbound !== null, performance.now());
    if (verdict === 'reject') {
      this.counters.foreignSource++;
      return;
    }
    if (verdict === 'moved') {
      if (this.#lockedOnce) this.counters.sourceMoves++;
      this.#lockedOnce = true;
      if (!this.#explicit) this.#target = { address: rinfo.address, port: rinfo.port };
    }
    this.#handler?.(header, packet, rinfo);
  }
}
