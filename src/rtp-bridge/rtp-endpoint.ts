import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { literalLookup } from '../util/literal-lookup.ts';
import { isRtcpPacket, parseRtp, type RtpHeader } from './rtp-packet.ts';
import { SourceLock, type SourceLockOptions } from './source-lock.ts';
import type { WakeCoalescer } from '../media-path/wake-coalescing.ts';

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
  /** SRTCP packets dropped: not authentic (tampered, wrong key, malformed), or replayed/too old. */
  srtcpAuthFailures: number;
  srtcpReplays: number;
  sendErrors: number;
}

/**
 * Where the service's RTCP goes when the phone does not multiplex it: where the phone's own
 * RTCP came from, out of the socket it arrived on (`rtcp`: the RTP+1 port; `rtp`: the RTP port).
 */
export interface RtcpRoute extends RtpAddress {
  via: 'rtp' | 'rtcp';
}

export interface EndpointRouting {
  target: RtpAddress | null;
  /** The target came from signalling (set_target), not from the phone's packets. */
  explicit: boolean;
  source: (RtpAddress & { ssrc: number; seq: number }) | null;
  /** Absent or null: RTCP multiplexed on the RTP port, toward the target (RFC 5761). */
  rtcp?: RtcpRoute | null;
}

export type PacketHandler = (header: RtpHeader, packet: Buffer, from: RemoteInfo) => void;
/** The phone's RTCP (plain, or SRTCP once authenticated and decrypted), from either port. */
export type RtcpHandler = (packet: Buffer) => void;

/** SRTCP of one direction (RFC 3711 3.4); absent for plain RTP. */
export interface RtcpProtection {
  protect(packet: Buffer): Buffer;
  /** The plain compound packet, or null: then `lastDropWasReplay` says why. */
  unprotect(packet: Buffer): Buffer | null;
  readonly lastDropWasReplay: boolean;
}

const DEFAULT_SOURCE: SourceLockOptions = { policy: 'strict', learningMs: 3000 };

function bindUdp(port: number, address: string): Promise<Socket> {
  const socket = createSocket({ type: isIP(address) === 6 ? 'udp6' : 'udp4', reuseAddr: false, lookup: literalLookup });
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind(port, address, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/**
 * The call's UDP sockets toward the phone, the RTP port and RTP+1 for RTCP; it owns both. It
 * learns which source is the phone and locks it (see SourceLock), where to send (explicit
 * target, else that source: symmetric RTP / comedia), unprotects and protects SRTP and
 * SRTCP, and hands the phone's parsed RTP to one handler and its RTCP to another. Packets
 * from anyone else are counted and go no further.
 */
export class RtpEndpoint {
  readonly port: number;
  readonly counters: EndpointCounters = { packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0, rtcpIn: 0, rtcpOut: 0, malformed: 0, foreignSource: 0, sourceMoves: 0, authFailures: 0, srtcpAuthFailures: 0, srtcpReplays: 0, sendErrors: 0 };
  readonly #socket: Socket;
  readonly #rtcpSocket: Socket | null;
  readonly #lock: SourceLock;
  readonly #wake: WakeCoalescer | null;
  #rtcpRoute: RtcpRoute | null = null;
  #inboundRtcp: RtcpProtection | null = null;
  #outboundRtcp: RtcpProtection | null = null;
  #target: RtpAddress | null = null;
  #explicit = false;
  #inbound: PacketProtection | null = null;
  #outbound: PacketProtection | null = null;
  #handler: PacketHandler | null = null;
  #rtcp: RtcpHandler | null = null;
  #lockedOnce = false;
  #closed = false;

  /**
   * Binds the RTP port and the port after it, for RTCP (RFC 3550 11: RTP on an even port,
   * RTCP on the next). `rtcpPort: 'optional'` carries on without the RTCP port when another
   * process holds it (a call resumed after a restart must not be lost for it); by default a
   * pair that cannot be had whole is refused like a busy port.
   */
  static async bind(opts: { port: number; address: string; source?: SourceLockOptions; rtcpPort?: 'required' | 'optional'; wake?: WakeCoalescer }): Promise<RtpEndpoint> {
    const socket = await bindUdp(opts.port, opts.address);
    let rtcp: Socket | null = null;
    try {
      rtcp = await bindUdp(opts.port + 1, opts.address);
    } catch (error) {
      if (opts.rtcpPort !== 'optional') {
        socket.close();
        throw error;
      }
    }
    return new RtpEndpoint(socket, rtcp, opts.port, opts.source ?? DEFAULT_SOURCE, opts.wake ?? null);
  }

  private constructor(socket: Socket, rtcp: Socket | null, port: number, source: SourceLockOptions, wake: WakeCoalescer | null) {
    this.#socket = socket;
    this.#wake = wake;
    this.#rtcpSocket = rtcp;
    this.port = port;
    this.#lock = new SourceLock(source);
    socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
    rtcp?.on('message', (msg, rinfo) => {
      // Only RTCP belongs on the RTCP port; anything else is not the phone's.
      if (isRtcpPacket(msg)) this.#onRtcpPacket(msg, rinfo, 'rtcp');
      else this.counters.malformed++;
    });
    // A send to an unreachable peer surfaces as an async socket error; it must not end the call.
    const onError = (): void => {
      this.counters.sendErrors++;
    };
    socket.on('error', onError);
    rtcp?.on('error', onError);
  }

  /** The RTP+1 port when it is bound (null: RTCP only multiplexed on the RTP port). */
  get rtcpPort(): number | null {
    return this.#rtcpSocket ? this.port + 1 : null;
  }

  /** Where the service's RTCP goes: null while it is multiplexed toward the target. */
  get rtcpRoute(): RtcpRoute | null {
    return this.#rtcpRoute;
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

  setProtection(inbound: PacketProtection | null, outbound: PacketProtection | null, rtcp?: { inbound: RtcpProtection; outbound: RtcpProtection }): void {
    this.#inbound = inbound;
    this.#outbound = outbound;
    this.#inboundRtcp = rtcp?.inbound ?? null;
    this.#outboundRtcp = rtcp?.outbound ?? null;
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
    this.#rtcpRoute = null;
    this.#lock.retarget(target, performance.now());
  }

  /** Where sending goes and whose packets are the phone's, for a process that resumes the call. */
  get routing(): EndpointRouting {
    return { target: this.#target, explicit: this.#explicit, source: this.#lock.locked, rtcp: this.#rtcpRoute };
  }

  /** Routing saved by another process: the phone is not learned again, it goes on. */
  restoreRouting(r: EndpointRouting): void {
    this.#target = r.target;
    this.#explicit = r.explicit;
    // A route over the RTP+1 port needs that port: without it, RTCP goes multiplexed.
    this.#rtcpRoute = r.rtcp && (r.rtcp.via === 'rtp' || this.#rtcpSocket) ? r.rtcp : null;
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

  /** RTCP can go out: the far end is known, and an SRTP leg has SRTCP to protect it with. */
  get canSendRtcp(): boolean {
    return this.#target !== null && !this.#closed && (this.#outbound === null || this.#outboundRtcp !== null);
  }

  /**
   * RTCP (SRTCP on an SRTP leg) goes multiplexed to where RTP goes, until the phone's own RTCP
   * shows it keeps RTCP apart: then where that came from, out of the port it arrived on.
   */
  sendRtcp(packet: Buffer): void {
    const t = this.#target;
    if (!t || this.#closed || (this.#outbound && !this.#outboundRtcp)) return;
    const wire = this.#outboundRtcp ? this.#outboundRtcp.protect(packet) : packet;
    const r = this.#rtcpRoute;
    this.counters.rtcpOut++;
    if (r) (r.via === 'rtcp' ? this.#rtcpSocket! : this.#socket).send(wire, r.port, r.address);
    else this.#socket.send(wire, t.port, t.address);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handler = null;
    this.#rtcp = null;
    this.#socket.close();
    this.#rtcpSocket?.close();
  }

  /**
   * The phone's RTCP, on either port. Only from the phone's address, and, for plain RTCP, only
   * from its RTP port or the one after it; SRTCP that authenticates proves itself from any port
   * of that address (a NAT may map the phone's RTCP port anywhere).
   */
  #onRtcpPacket(msg: Buffer, rinfo: RemoteInfo, via: 'rtp' | 'rtcp'): void {
    this.counters.rtcpIn++;
    const src = this.#lock.source;
    if (!src || src.address !== rinfo.address) {
      this.counters.foreignSource++;
      return;
    }
    const fromPair = rinfo.port === src.port || rinfo.port === src.port + 1;
    let packet: Buffer | null = msg;
    if (this.#inboundRtcp) {
      packet = this.#inboundRtcp.unprotect(msg);
      if (!packet) {
        if (this.#inboundRtcp.lastDropWasReplay) this.counters.srtcpReplays++;
        else this.counters.srtcpAuthFailures++;
        return;
      }
    } else if (this.#inbound || !fromPair) {
      // Plain RTCP on an SRTP leg is not the phone's (it has the key), nor from a third port.
      this.counters.foreignSource++;
      return;
    }
    const muxed = via === 'rtp' && rinfo.port === src.port;
    const r = this.#rtcpRoute;
    if (muxed) this.#rtcpRoute = null;
    else if (!r || r.via !== via || r.port !== rinfo.port || r.address !== rinfo.address) this.#rtcpRoute = { address: rinfo.address, port: rinfo.port, via };
    this.#rtcp?.(packet);
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    this.#wake?.packet();
    this.counters.packetsIn++;
    this.counters.bytesIn += msg.length;
    if (isRtcpPacket(msg)) {
      this.#onRtcpPacket(msg, rinfo, 'rtp');
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
      // The phone is elsewhere now: its RTCP is learned again, meanwhile it goes multiplexed.
      this.#rtcpRoute = null;
      if (!this.#explicit) this.#target = { address: rinfo.address, port: rinfo.port };
    }
    this.#handler?.(header, packet, rinfo);
  }
}
