import { Counter, Gauge } from 'prom-client';
import { METRIC_PREFIX, scrapedCounter, type Metrics } from '../metrics/metrics.ts';
import type { EndpointCounters } from '../rtp-bridge/rtp-endpoint.ts';
import type { CallSession } from './call-session.ts';
import type { PortAllocator } from './port-allocator.ts';

type Totals = Pick<EndpointCounters, 'packetsIn' | 'packetsOut' | 'bytesIn' | 'bytesOut' | 'authFailures' | 'malformed' | 'foreignSource' | 'sourceMoves' | 'lost'>;

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
  readonly #closedTotals: Totals = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, authFailures: 0, malformed: 0, foreignSource: 0, sourceMoves: 0, lost: 0 };
  #ports: PortAllocator | undefined;
  #live: () => Iterable<CallSession> = () => [];

  constructor(metrics: Metrics) {
    const registers = [metrics.registry];
    this.activeSessions = metrics.activeSessions;
    this.sessionsClosed = new Counter({ name: `${METRIC_PREFIX}sessions_closed_total`, help: 'Call sessions closed, by reason', labelNames: ['reason'] as const, registers });
    this.sessionTimeouts = new Counter({ name: `${METRIC_PREFIX}session_timeouts_total`, help: 'Sessions closed for receiving no RTP', registers });
    this.allocationFailures = new Counter({ name: `${METRIC_PREFIX}port_allocation_failures_total`, help: 'AllocatePort calls refused for lack of ports', registers });
    this.playbacks = new Counter({ name: `${METRIC_PREFIX}playbacks_total`, help: 'Prompts played, by result', labelNames: ['result'] as const, registers });
    this.dtmfDigits = new Counter({ name: `${METRIC_PREFIX}dtmf_digits_total`, help: 'DTMF digits received (RFC 4733)', registers });
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
    totalCounter('rtp_malformed_packets_total', 'Packets dropped as malformed RTP', 'malformed');
    totalCounter('rtp_foreign_packets_total', 'RTP packets dropped because they came from a source that is not the call\'s phone', 'foreignSource');
    totalCounter('rtp_packets_lost_total', 'RTP packets missing from phones\' sequences (gaps)', 'lost');
    totalCounter('rtp_source_moves_total', 'Times a phone\'s RTP source moved to a new address after proving itself (NAT rebinding, re-target)', 'sourceMoves');
  }

  bindPorts(ports: PortAllocator, live: () => Iterable<CallSession>): void {
    this.#ports = ports;
    this.#live = live;
  }

  /** Keeps a closed call's packet numbers in the totals. */
  absorb(s: CallSession): void {
    const c = s.endpoint.counters;
    for (const k of Object.keys(this.#closedTotals) as (keyof Totals)[]) this.#closedTotals[k] += c[k];
  }
}
