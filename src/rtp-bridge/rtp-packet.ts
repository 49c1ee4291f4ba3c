/** The fields of an RTP header (RFC 3550) that the media path uses. */
export interface RtpHeader {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  /** Payload bytes start here (after CSRCs and the header extension). */
  payloadOffset: number;
  /** Payload length without padding. */
  payloadLength: number;
}

export const RTP_HEADER_BYTES = 12;

/** Parses a packet from the network; null when it is not well-formed RTP version 2. */
export function parseRtp(buf: Uint8Array): RtpHeader | null {
  if (buf.length < RTP_HEADER_BYTES) return null;
  const b0 = buf[0]!;
  if (b0 >> 6 !== 2) return null;
  const b1 = buf[1]!;
  let offset = RTP_HEADER_BYTES + (b0 & 0x0f) * 4;
  if (b0 & 0x10) {
    if (buf.length < offset + 4) return null;
    offset += 4 + ((buf[offset + 2]! << 8) | buf[offset + 3]!) * 4;
  }
  let end = buf.length;
  if (b0 & 0x20) {
    const pad = buf[end - 1]!;
    if (pad === 0 || pad > end - offset) return null;
    end -= pad;
  }
  if (offset > end) return null;
  return {
    marker: (b1 & 0x80) !== 0,
    payloadType: b1 & 0x7f,
    sequenceNumber: (buf[2]! << 8) | buf[3]!,
    timestamp: ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0,
    ssrc: ((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0,
    payloadOffset: offset,
    payloadLength: end - offset,
  };
}

/** RTCP multiplexed on the RTP port (RFC 5761): packet types 192-223 in the second byte. */
export function isRtcpPacket(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[1]! >= 192 && buf[1]! <= 223;
}

/** Writes a 12-byte header and the payload into a new buffer. */
export function buildRtp(h: { marker: boolean; payloadType: number; sequenceNumber: number; timestamp: number; ssrc: number }, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(RTP_HEADER_BYTES + payload.length);
  out[0] = 0x80;
  out[1] = (h.marker ? 0x80 : 0) | (h.payloadType & 0x7f);
  out.writeUInt16BE(h.sequenceNumber & 0xffff, 2);
  out.writeUInt32BE(h.timestamp >>> 0, 4);
  out.writeUInt32BE(h.ssrc >>> 0, 8);
  out.set(payload, RTP_HEADER_BYTES);
  return out;
}

/** Signed distance a - b between two 16-bit sequence numbers. */
export function seqDelta(a: number, b: number): number {
  const d = (a - b) & 0xffff;
  return d >= 0x8000 ? d - 0x10000 : d;
}

/** Signed distance a - b between two 32-bit RTP timestamps. */
export function tsDelta(a: number, b: number): number {
  return ((a - b) | 0);
}
