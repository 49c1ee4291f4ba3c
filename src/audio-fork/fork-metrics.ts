import { Counter, Gauge } from 'prom-client';
import { FrameHistogram } from '../metrics/frame-histogram.ts';
import { METRIC_PREFIX, type Metrics } from '../metrics/metrics.ts';

export class ForkMetrics {
  readonly listeners: Gauge;
  readonly conversions: Gauge;
  readonly frames: Counter;
  readonly dropped: Counter;
  /** Observed once per frame and listener. */
  readonly latency: FrameHistogram;

  constructor(m: Metrics) {
    const registers = [m.registry];
    this.listeners = new Gauge({ name: `${METRIC_PREFIX}fork_listeners`, help: 'Live audio streams out of calls (RecordAudio / StreamAudio)', registers });
    this.conversions = new Gauge({ name: `${METRIC_PREFIX}fork_conversions`, help: 'Distinct live audio conversions behind the fork listeners (listeners of one call asking the same format share one)', registers });
    this.frames = new Counter({ name: `${METRIC_PREFIX}fork_frames_total`, help: 'Audio frames written to fork listeners', registers });
    this.dropped = new Counter({ name: `${METRIC_PREFIX}fork_frames_dropped_total`, help: 'Frames dropped (oldest first) because a listener did not keep up', registers });
    this.latency = new FrameHistogram({
      name: `${METRIC_PREFIX}fork_latency_seconds`,
      help: 'From the audio reaching the service to its frame being written to the listener',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      registers,
    });
  }
}
