/** RTCP (RFC 3550 section 6) as the service reads it from phones: compound packets of SR, RR, SDES, BYE and XR (RFC 3611). */
export interface ReportBlock {
  ssrc: number;
  /** Fraction of packets lost since the previous report, 0..1. */
  fractionLost: number;
  /** Cumulative packets lost (signed: duplicates can make it negative). */
  cumulativeLost: number;
  extendedHighestSeq: number;
  /** Interarrival jitter in the stream's timestamp units. */
  jitter: number;
  /** Middle 32 bits of the NTP time of the last SR received from the reported source (0: none). */
  lsr: number;
  /** Delay since that SR, in 1/65536 s. */
  dlsr: number;
}

/**
 * RFC 3611 4.7: the VoIP metrics a far end reports of a stream it receives. Rates are 0..1,
 * times in ms, levels in dBm/dB; null where the sender marks a value unavailable (127).
 */
export interface VoipMetrics {
  ssrc: number;
  lossRate: number;
  discardRate: number;
  burstDensity: number;
  gapDensity: number;
  burstDurationMs: number;
  gapDurationMs: number;
  roundTripDelayMs: number;
  endSystemDelayMs: number;
  signalLevelDbm: number | null;
  noiseLevelDbm: number | null;
  rerlDb: number | null;
  gmin: number;
  rFactor: number | null;
  extRFactor: number | null;
  mosLq: number | null;
  mosCq: number | null;
  /** Packet loss concealment (RX config). */
  plc: (typeof PLC)[number];
  jitterBuffer: { adaptive: boolean | null; nominalMs: number; maxMs: number; absMaxMs: number };
}

export type RtcpPacket =
  | { type: 'sr'; ssrc: number; ntpSec: number; ntpFrac: number; rtpTimestamp: number; packets: number; octets: number; reports: ReportBlock[] }
  | { type: 'rr'; ssrc: number; reports: ReportBlock[] }
  | { type: 'sdes'; chunks: { ssrc: number; cname?: string }[] }
  | { type: 'bye'; ssrcs: number[]; reason?: string }
  | { type: 'xr'; ssrc: number; voip: VoipMetrics[] }
  | { type: 'other'; packetType: number };

const PT = { SR: 200, RR: 201, SDES: 202, BYE: 203, XR: 207 } as const;
/** RFC 3611 block type 7, and its fixed length in 32-bit words less one. */
const XR_VOIP_METRICS = 7;
const XR_VOIP_METRICS_WORDS = 8;
const UNAVAILABLE = 127;
/** RX config's top two bits (RFC 3611 4.7.6). */
const PLC = ['unspecified', 'disabled', 'enhanced', 'standard'] as const;

const signed8 = (v: number): number => (v > 127 ? v - 256 : v);
const orNull = (v: number, f: (x: number) => number = (x) => x): number | null => (v === UNAVAILABLE ? null : f(v));

function voipMetrics(b: Buffer, o: number): VoipMetrics {
  const rx = b[o + 28]!;
  const jba = (rx >> 4) & 3;
  return {
    ssrc: b.readUInt32BE(o + 4),
    lossRate: b[o + 8]! / 256,
    discardRate: b[o + 9]! / 256,
    burstDensity: b[o + 10]! / 256,
    gapDensity: b[o + 11]! / 256,
    burstDurationMs: b.readUInt16BE(o + 12),
    gapDurationMs: b.readUInt16BE(o + 14),
    roundTripDelayMs: b.readUInt16BE(o + 16),
    endSystemDelayMs: b.readUInt16BE(o + 18),
    signalLevelDbm: orNull(b[o + 20]!, signed8),
    noiseLevelDbm: orNull(b[o + 21]!, signed8),
    rerlDb: orNull(b[o + 22]!),
    gmin: b[o + 23]!,
    rFactor: orNull(b[o + 24]!),
    extRFactor: orNull(b[o + 25]!),
    mosLq: orNull(b[o + 26]!, (x) => x / 10),
    mosCq: orNull(b[o + 27]!, (x) => x / 10),
    plc: PLC[rx >> 6]!,
    // JBA: 0 unknown, 1 reserved, 2 non-adaptive, 3 adaptive.
    jitterBuffer: { adaptive: jba === 3 ? true : jba === 2 ? false : null, nominalMs: b.readUInt16BE(o + 30), maxMs: b.readUInt16BE(o + 32), absMaxMs: b.readUInt16BE(o + 34) },
  };
}
const CNAME = 1;

function reportBlock(b: Buffer, o: number): ReportBlock {
  const lost = b.readUIntBE(o + 5, 3);
  return {
    ssrc: b.readUInt32BE(o),
    fractionLost: b[o + 4]! / 256,
    cumulativeLost: lost & 0x800000 ? lost - 0x1000000 : lost,
    extendedHighestSeq: b.readUInt32BE(o + 8),
    jitter: b.readUInt32BE(o + 12),
    lsr: b.readUInt32BE(o + 16),
    dlsr: b.readUInt32BE(o + 20),
  };
}

/** The packets of one compound RTCP datagram, or null when it is not well-formed RTCP. */
export function parseRtcp(b: Buffer): RtcpPacket[] | null {
  const out: RtcpPacket[] = [];
  let o = 0;
  while (o < b.length) {
    if (b.length - o < 4 || b[o]! >> 6 !== 2) return null;
    const count = b[o]! & 0x1f;
    const padded = (b[o]! & 0x20) !== 0;
    const pt = b[o + 1]!;
    const len = (b.readUInt16BE(o + 2) + 1) * 4;
    if (o + len > b.length) return null;
    const end = padded ? o + len - b[o + len - 1]! : o + len;
    if (end < o + 4) return null;
    switch (pt) {
      case PT.SR: {
        if (end - o < 28 + count * 24) return null;
        const reports = Array.from({ length: count }, (_, i) => reportBlock(b, o + 28 + i * 24));
        out.push({ type: 'sr', ssrc: b.readUInt32BE(o + 4), ntpSec: b.readUInt32BE(o + 8), ntpFrac: b.readUInt32BE(o + 12), rtpTimestamp: b.readUInt32BE(o + 16), packets: b.readUInt32BE(o + 20), octets: b.readUInt32BE(o + 24), reports });
        break;
      }
      case PT.RR: {
        if (end - o < 8 + count * 24) return null;
        out.push({ type: 'rr', ssrc: b.readUInt32BE(o + 4), reports: Array.from({ length: count }, (_, i) => reportBlock(b, o + 8 + i * 24)) });
        break;
      }
      case PT.SDES: {
        const chunks: { ssrc: number; cname?: string }[] = [];
        let c = o + 4;
        for (let i = 0; i < count && c + 4 <= end; i++) {
          const chunk: { ssrc: number; cname?: string } = { ssrc: b.readUInt32BE(c) };
          c += 4;
          while (c < end && b[c] !== 0) {
            const type = b[c]!;
            const n = b[c + 1] ?? 0;
            if (c + 2 + n > end) return null;
            if (type === CNAME) chunk.cname = b.toString('utf8', c + 2, c + 2 + n);
            c += 2 + n;
          }
          // The null item, then padding to the next 32-bit boundary.
          c = (c + 4) & ~3;
          chunks.push(chunk);
        }
        out.push({ type: 'sdes', chunks });
        break;
      }
      case PT.BYE: {
        if (end - o < 4 + count * 4) return null;
        const ssrcs = Array.from({ length: count }, (_, i) => b.readUInt32BE(o + 4 + i * 4));
        const r = o + 4 + count * 4;
        const reason = r < end ? b.toString('utf8', r + 1, Math.min(end, r + 1 + b[r]!)) : undefined;
        out.push({ type: 'bye', ssrcs, ...(reason ? { reason } : {}) });
        break;
      }
      case PT.XR: {
        if (end - o < 8) return null;
        const voip: VoipMetrics[] = [];
        // Report blocks of any type: each says its own length; only VoIP metrics are read.
        for (let k = o + 8; k < end; ) {
          if (end - k < 4) return null;
          const words = b.readUInt16BE(k + 2);
          const next = k + 4 + words * 4;
          if (next > end) return null;
          if (b[k] === XR_VOIP_METRICS && words === XR_VOIP_METRICS_WORDS) voip.push(voipMetrics(b, k));
          k = next;
        }
        out.push({ type: 'xr', ssrc: b.readUInt32BE(o + 4), voip });
        break;
      }
      default:
        out.push({ type: 'other', packetType: pt });
    }
    o += len;
  }
  return out.length > 0 ? out : null;
}
