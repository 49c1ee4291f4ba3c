import { CODEC_IMPAIRMENT, mosFromR, rFactor } from './e-model.ts';

/** What mediasoup 3.12 reports of one RTP stream (Producer/Consumer getStats), the part used here. */
export interface StreamStat {
  type: string;
  mimeType: string;
  packetCount: number;
  byteCount: number;
  packetsLost: number;
  /** 0..255, as an RTCP report block carries it. */
  fractionLost: number;
  /** RFC 3550 interarrival jitter, in the stream's RTP clock units (inbound streams). */
  jitter?: number;
  /** ms, from the receiver's reports (outbound streams). */
  roundTripTime?: number;
}

/** A browser leg's quality, in the shape of a phone's (GetCallQuality). */
export interface WebRtcQuality {
  peer_id: string;
  display_name: string;
  codec: string;
  /** What the browser sent: its microphone's stream, as the SFU received it. */
  inbound: { packets: number; lost: number; loss_ratio: number; jitter_ms: number };
  /** What the service sent the browser, and what the browser said of it in its reports. */
  outbound: { packets: number; bytes: number; fraction_lost: number; lost: number };
  has_rtt: boolean;
  rtt_ms: number;
  mos: number;
  r_factor: number;
}

/** A browser's own playout buffer and Opus's 20 ms frame: its share of the one-way delay, as the E-model is given it. */
const ASSUMED_DELAY_MS = 60;
const clockOf = (mimeType: string): number => (/pcm[ua]$/i.test(mimeType) ? 8000 : 48000);
const codecOf = (mimeType: string): string => mimeType.replace(/^audio\//i, '').toUpperCase();

/**
 * One browser's figures from the stats of its audio producer (`sent`: the streams it sends)
 * and of the consumers that carry audio to it (`received`): packets, loss and jitter of what
 * it sent; packets and its reported loss of what it got; the round trip from its receiver
 * reports; and an E-model MOS on Opus's planning values (G.113 gives none for Opus).
 */
export function webrtcQuality(peer: { id: string; displayName: string }, sent: readonly StreamStat[], received: readonly StreamStat[]): WebRtcQuality {
  const ins = sent.filter((s) => s.type === 'inbound-rtp');
  const outs = received.filter((s) => s.type === 'outbound-rtp');
  const packets = ins.reduce((n, s) => n + s.packetCount, 0);
  const lost = ins.reduce((n, s) => n + Math.max(0, s.packetsLost), 0);
  const jitterMs = Math.max(0, ...ins.map((s) => ((s.jitter ?? 0) * 1000) / clockOf(s.mimeType)));
  const rtts = outs.map((s) => s.roundTripTime ?? 0).filter((r) => r > 0);
  const rtt = rtts.length ? rtts.reduce((a, b) => a + b, 0) / rtts.length : 0;
  const lossRatio = packets + lost > 0 ? lost / (packets + lost) : 0;
  const r = rFactor(CODEC_IMPAIRMENT.OPUS, lossRatio, ASSUMED_DELAY_MS + jitterMs + rtt / 2);
  return {
    peer_id: peer.id,
    display_name: peer.displayName,
    codec: ins[0] ? codecOf(ins[0].mimeType) : '',
    inbound: { packets, lost, loss_ratio: +lossRatio.toFixed(4), jitter_ms: +jitterMs.toFixed(2) },
    outbound: {
      packets: outs.reduce((n, s) => n + s.packetCount, 0),
      bytes: outs.reduce((n, s) => n + s.byteCount, 0),
      fraction_lost: +Math.max(0, ...outs.map((s) => s.fractionLost / 256)).toFixed(4),
      lost: outs.reduce((n, s) => n + Math.max(0, s.packetsLost), 0),
    },
    has_rtt: rtts.length > 0,
    rtt_ms: +rtt.toFixed(1),
    mos: +mosFromR(r).toFixed(2),
    r_factor: +r.toFixed(1),
  };
}
