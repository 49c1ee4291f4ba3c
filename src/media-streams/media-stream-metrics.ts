import { Counter, Gauge } from 'prom-client';
import { METRIC_PREFIX, type Metrics } from '../metrics/metrics.ts';

export class MediaStreamMetrics {
  readonly active: Gauge<'direction'>;
  readonly connections: Counter<'outcome'>;
  readonly disconnects: Counter;
  readonly refused: Counter<'protocol'>;
  readonly ignored: Counter<'protocol'>;
  readonly ended: Counter<'reason'>;

  constructor(m: Metrics) {
    const registers = [m.registry];
    this.active = new Gauge({ name: `${METRIC_PREFIX}media_streams`, help: 'Live WebSocket media streams, by who opened the connection (dialled out, connected in)', labelNames: ['direction'] as const, registers });
    this.connections = new Counter({
      name: `${METRIC_PREFIX}media_stream_connections_total`,
      help: 'WebSocket connections of media streams by outcome (connected, redialled, failed, refused by the destination policy)',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.disconnects = new Counter({ name: `${METRIC_PREFIX}media_stream_disconnects_total`, help: 'Media stream connections the backend dropped while the stream ran', registers });
    this.refused = new Counter({ name: `${METRIC_PREFIX}media_stream_messages_refused_total`, help: 'Backend messages that broke the protocol (the connection was closed)', labelNames: ['protocol'] as const, registers });
    this.ignored = new Counter({ name: `${METRIC_PREFIX}media_stream_messages_ignored_total`, help: 'Backend messages the stream had no use for (unknown events, audio on a one-way stream)', labelNames: ['protocol'] as const, registers });
    this.ended = new Counter({ name: `${METRIC_PREFIX}media_streams_ended_total`, help: 'Media streams ended, by reason', labelNames: ['reason'] as const, registers });
  }
}
