/** What the browser's WebRTC stack says it sends and receives (RTCPeerConnection.getStats). */
import type { Consumer, Producer } from 'mediasoup-client/types';

export interface OutboundStats {
  packetsSent: number;
  bytesSent: number;
}

export interface InboundStats {
  producerId: string;
  peerId: string;
  packetsReceived: number;
  packetsLost: number;
  /** 0..1, the level of the most recent audio (what the ear would hear now). */
  audioLevel: number;
  /** Accumulated energy since the start: grows whenever anything audible arrived. */
  totalAudioEnergy: number;
  jitter: number;
}

export interface DemoStats {
  outbound: OutboundStats[];
  inbound: InboundStats[];
}

type Entry = Record<string, unknown>;

function entries(report: RTCStatsReport, type: string): Entry[] {
  const out: Entry[] = [];
  report.forEach((s: Entry) => {
    if (s['type'] === type && (s['kind'] === 'audio' || s['mediaType'] === 'audio')) out.push(s);
  });
  return out;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

export async function collectStats(mic: Producer | undefined, remotes: { consumer: Consumer; producerId: string; peerId: string }[]): Promise<DemoStats> {
  const outbound: OutboundStats[] = [];
  if (mic && !mic.closed) {
    for (const s of entries(await mic.getStats(), 'outbound-rtp')) outbound.push({ packetsSent: num(s['packetsSent']), bytesSent: num(s['bytesSent']) });
  }
  const inbound = await Promise.all(
    remotes
      .filter((r) => !r.consumer.closed)
      .map(async (r): Promise<InboundStats> => {
        const s = entries(await r.consumer.getStats(), 'inbound-rtp')[0] ?? {};
        return {
          producerId: r.producerId,
          peerId: r.peerId,
          packetsReceived: num(s['packetsReceived']),
          packetsLost: num(s['packetsLost']),
          audioLevel: num(s['audioLevel']),
          totalAudioEnergy: num(s['totalAudioEnergy']),
          jitter: num(s['jitter']),
        };
      }),
  );
  return { outbound, inbound };
}
