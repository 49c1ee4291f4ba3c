import { parseRtcp, type VoipMetrics } from './rtcp.ts';
import { ntpMiddle, ntpOf } from './rtcp-writer.ts';

/** What the phone said in its RTCP: its own sending, its view of the service's stream, its name, its goodbye. */
export interface RemoteReports {
  reports: number;
  malformed: number;
  cname: string;
  bye: boolean;
  /** From its last SR: what it says it sent, what had arrived here when that SR did, and when (for LSR/DLSR). */
  sender: { packets: number; octets: number; receivedHere: number; ntpMiddle: number; arrivedUnixMs: number } | null;
  /** Round trip from its report blocks about the service's SRs (RFC 3550 6.4.1), ms. */
  rttMs: number | null;
  /** From its last report block about the service's stream. */
  ofOurs: { fractionLost: number; cumulativeLost: number; jitter: number } | null;
  /** Its last RTCP XR VoIP metrics block (RFC 3611 4.7) about the service's stream. */
  voip: VoipMetrics | null;
}

export class RemoteReportsReader {
  readonly state: RemoteReports = { reports: 0, malformed: 0, cname: '', bye: false, sender: null, ofOurs: null, rttMs: null, voip: null };

  /** One RTCP datagram; `receivedHere`: the phone's RTP packets received so far; `ourSsrc`: the service's stream. */
  read(packet: Buffer, receivedHere: number, ourSsrc: number, nowUnixMs = Date.now()): void {
    let parsed: ReturnType<typeof parseRtcp>;
    try {
      parsed = parseRtcp(packet);
    } catch {
      // A datagram this reader did not foresee is one malformed report, never the call's end.
      parsed = null;
    }
    if (!parsed) {
      this.state.malformed++;
      return;
    }
    this.state.reports++;
    for (const p of parsed) {
      if (p.type === 'sr') this.state.sender = { packets: p.packets, octets: p.octets, receivedHere, ntpMiddle: ntpMiddle(p.ntpSec, p.ntpFrac), arrivedUnixMs: nowUnixMs };
      if (p.type === 'sr' || p.type === 'rr') {
        const mine = p.reports.find((r) => r.ssrc === ourSsrc >>> 0);
        if (mine) {
          this.state.ofOurs = { fractionLost: mine.fractionLost, cumulativeLost: mine.cumulativeLost, jitter: mine.jitter };
          if (mine.lsr !== 0) {
            const now = ntpOf(nowUnixMs);
            const rtt = ((ntpMiddle(now.sec, now.frac) - mine.lsr - mine.dlsr) >>> 0) / 65536;
            // A clock step or a stale block gives nonsense: past 10 s it is not a round trip.
            if (rtt < 10) this.state.rttMs = rtt * 1000;
          }
        }
      }
      if (p.type === 'sdes') {
        const c = p.chunks.find((x) => x.cname !== undefined);
        if (c?.cname) this.state.cname = c.cname.slice(0, 255);
      }
      if (p.type === 'bye') this.state.bye = true;
      if (p.type === 'xr') {
        const v = p.voip.find((m) => m.ssrc === ourSsrc >>> 0);
        if (v) this.state.voip = v;
      }
    }
  }
}
