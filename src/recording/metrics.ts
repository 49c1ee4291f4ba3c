import { Counter, Gauge, Histogram } from 'prom-client';
import { METRIC_PREFIX, type Metrics } from '../metrics/metrics.ts';

export class RecordingMetrics {
  readonly active: Gauge;
  readonly bytesWritten: Counter;
  readonly uploadsPending: Gauge;
  readonly uploads: Counter<'result'>;
  readonly failed: Gauge;
  readonly uploadDuration: Histogram;
  readonly recovered: Counter;
  readonly droppedBytes: Counter;

  constructor(m: Metrics) {
    const registers = [m.registry];
    this.active = new Gauge({ name: `${METRIC_PREFIX}recordings_active`, help: 'Recordings being written', registers });
    this.bytesWritten = new Counter({ name: `${METRIC_PREFIX}recording_bytes_written_total`, help: 'Audio bytes written to recording spool files', registers });
    this.uploadsPending = new Gauge({ name: `${METRIC_PREFIX}recording_uploads_pending`, help: 'Finished recordings not yet confirmed by their store', registers });
    this.uploads = new Counter({
      name: `${METRIC_PREFIX}recording_uploads_total`,
      help: 'Recording upload attempts by result (succeeded, failed); failed_permanently counts recordings given up on and kept as failed',
      labelNames: ['result'] as const,
      registers,
    });
    this.failed = new Gauge({ name: `${METRIC_PREFIX}recordings_failed`, help: 'Recordings the store refused for good, kept in the spool and tried again at each start', registers });
    this.uploadDuration = new Histogram({
      name: `${METRIC_PREFIX}recording_upload_duration_seconds`,
      help: 'Time to store one recording',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.recovered = new Counter({ name: `${METRIC_PREFIX}recordings_recovered_total`, help: 'Recordings found in the spool at start-up and resumed', registers });
    this.droppedBytes = new Counter({ name: `${METRIC_PREFIX}recording_dropped_bytes_total`, help: 'Audio bytes not written because the disk fell behind', registers });
  }
}
