import { Counter, Gauge, Histogram } from 'prom-client';
import type { CallQuality } from '../quality/call-quality.ts';
import { METRIC_PREFIX, scrapedCounter, type Metrics } from '../metrics/metrics.ts';
import type { EndpointCounters } from '../rtp-bridge/rtp-endpoint.ts';
import type { CallSession } from './call-session.ts';
import type { PortAllocator } from './port-allocator.ts';

type Totals = Pick<EndpointCounters, 'packetsIn' | 'packetsOut' | 'bytesIn' | 'bytesOut' | 'authFailures' | 'srtcpAuthFailures' | 'srtcpReplays' | 'malformed' | 'foreignSource' | 'sourceMoves'>;

/**
 * Call metrics. Per-packet numbers live as plain fields on each endpoint (no metric call per
 * packet); they are summed when Prometheus scrapes, and folded into totals when a call ends.
 */
export class SessionMetrics {
  readonly activeSessions: Gauge;
  readonly sessionsClosed: Counter<'reason'>;
  readonly sessionTimeouts: Counter;
  readonly allocationFailures: Counter;
  readonly playbacks: Counter<'result'>;
  readonly dtmfDigits: Counter;
  readonly qualityDegraded: Counter;
  readonly #jitter: Histogram;
  readonly #loss: Histogram;
  readonly #mos: Histogram;
  readonly #closedTotals: Totals = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, authFailures: 0, srtcpAuthFailures: 0, srtcpReplays: 0, malformed: 0, foreignSource: 0, sourceMoves: 0 };
  #closedLost = 0;
  #ports: PortAllocator | undefined;
  #live: () => Iterable<CallSession> = () => [];

  constructor(metrics: Metrics) {
    const registers = [metrics.registry];
    this.activeSessions = metrics.activeSessions;
    this.sessionsClosed = new Counter({ name: `${METRIC_PREFIX}sessions_closed_total`, help: 'Call sessions closed, by reason', labelNames: ['reason'] as const, registers });
    this.sessionTimeouts = new Counter({ name: `${METRIC_PREFIX}session_timeouts_total`, help: 'Sessions closed for receiving no RTP', registers });
    this.allocationFailures = new Counter({ name: `${METRIC_PREFIX}port_allocation_failures_total`, help: 'AllocatePort calls refused for lack of ports', registers });
    this.playbacks = new Counter({ name: `${METRIC_PREFIX}playbacks_total`, help: 'Prompts played, by result', labelNames: ['result'] as const, registers });
    this.#jitter = new Histogram({ name: `${METRIC_PREFIX}call_inbound_jitter_seconds`, help: 'Interarrival jitter (RFC 3550) of the phone\'s RTP, per call at its end', buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16], registers });
    this.#loss = new Histogram({ name: `${METRIC_PREFIX}call_inbound_loss_ratio`, help: 'Share of the phone\'s RTP packets lost, per call at its end', buckets: [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2], registers });
    this.#mos = new Histogram({ name: `${METRIC_PREFIX}call_mos`, help: 'E-model MOS estimate (ITU-T G.107, simplified) of what the service heard, per call at its end', buckets: [1.5, 2, 2.5, 3, 3.5, 3.8, 4, 4.2, 4.4], registers });
    this.dtmfDigits = new Counter({ name: `${METRIC_PREFIX}dtmf_digits_total`, help: 'DTMF digits received (RFC 4733)', registers });
    this.qualityDegraded = new Counter({ name: `${METRIC_PREFIX}calls_quality_degraded_total`, help: 'Calls reported degraded (call.media.quality.degraded): MOS, loss or jitter crossed its threshold', registers });
    const self = this;
    const portGauge = (name: string, help: string, read: (p: PortAllocator) => number): void => {
      new Gauge({
        name: `${METRIC_PREFIX}${name}`,
        help,
        registers,
        collect() {
          if (self.#ports) this.set(read(self.#ports));
        },
      });
    };
    portGauge('rtp_ports_in_use', 'RTP ports held by calls', (p) => p.inUse);
    portGauge('rtp_ports_quarantined', 'Released RTP ports resting before reuse', (p) => p.inQuarantine);
    portGauge('rtp_ports_available', 'RTP ports free to allocate', (p) => p.available);
    const totalCounter = (name: string, help: string, key: keyof Totals): void => {
      scrapedCounter(metrics.registry, name, help, () => {
        let v = self.#closedTotals[key];
        for (const s of self.#live()) v += s.endpoint.counters[key];
        return v;
      });
    };
    totalCounter('rtp_packets_received_total', 'RTP/RTCP packets received from phones', 'packetsIn');
    totalCounter('rtp_packets_sent_total', 'RTP packets sent to phones', 'packetsOut');
    totalCounter('rtp_bytes_received_total', 'RTP bytes received from phones', 'bytesIn');
    totalCounter('rtp_bytes_sent_total', 'RTP bytes sent to phones', 'bytesOut');
    totalCounter('srtp_auth_failures_total', 'SRTP packets dropped: authentication failed or replayed', 'authFailures');
    totalCounter('srtcp_auth_failures_total', 'SRTCP packets dropped: not authentic (tampered, wrong key) or not well-formed', 'srtcpAuthFailures');
    totalCounter('srtcp_replays_total', 'SRTCP packets dropped: an SRTCP index already received, or too old for the replay window', 'srtcpReplays');
    totalCounter('rtp_malformed_packets_total', 'Packets dropped as malformed RTP', 'malformed');
    totalCounter('rtp_foreign_packets_total', 'RTP packets dropped because they came from a source that is not the call\'s phone', 'foreignSource');
    scrapedCounter(metrics.registry, 'rtp_packets_lost_total', 'RTP packets missing from phones\' sequences (RFC 3550: expected less received)', () => {
      let v = self.#closedLost;
      for (const s of self.#live()) v += s.inboundQuality.lostAllStreams;
      return v;
    });
    totalCounter('rtp_source_moves_total', 'Times a phone\'s RTP source moved to a new address after proving itself (NAT rebinding, re-target)', 'sourceMoves');
  }

  /** A call's quality at its end (a call that received nothing is not counted). */
  observeQuality(q: CallQuality): void {
    if (q.inbound.packets === 0) return;
    this.#jitter.observe(q.inbound.jitter_ms / 1000);
    this.#loss.observe(q.inbound.loss_ratio);
    this.#mos.observe(q.mos);
  }

  bindPorts(ports: PortAllocator, live: () => Iterable<CallSession>): void {
    this.#ports = ports;
    this.#live = live;
  }

  /** Keeps a closed call's packet numbers in the totals. */
  absorb(s: CallSession): void {
    const c = s.endpoint.counters;
    for (const k of Object.keys(this.#closedTotals) as (keyof Totals)[]) this.#closedTotals[k] += c[k];
    this.#closedLost += s.inboundQuality.lostAllStreams;
  }
}
