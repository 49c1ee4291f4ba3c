import type { CloseReason } from '../sessions/call-session.ts';
import type { TapHost } from '../sessions/media-host.ts';
import { AudioFork, type ForkFormat, type ForkFrame } from './audio-fork.ts';
import type { ForkMetrics } from './fork-metrics.ts';

export interface ForkSink {
  /** Writes one message; false when the transport's buffer is full (wait for drain). */
  write(frame: ForkFrame): boolean;
  onceDrain(cb: () => void): void;
}

/**
 * Each call's forks by format: listeners asking for the same audio share one conversion
 * (resampling, G.711 encoding) and the same frames. Opus is not shared: an encoder's state is
 * its stream's, and a decoder joining another stream mid-way would start on its history.
 */
const shared = new WeakMap<TapHost, Map<string, AudioFork>>();

/**
 * Attaches a listener to a call's audio and moves its frames to a sink until the call ends or
 * the listener goes away; resolves with why it ended. The call never waits for the listener.
 */
export function runFork(opts: {
  session: TapHost;
  format: ForkFormat;
  sink: ForkSink;
  signal: AbortSignal;
  metrics: ForkMetrics;
  maxQueueFrames: number;
  /** Called once the fork is attached (its encoder built), before any frame: the place for a format message. */
  onStart?: () => void;
}): Promise<CloseReason | 'cancelled'> {
  const { session, sink, metrics } = opts;
  if (session.closed) return Promise.resolve('released');
  return new Promise((resolve) => {
    let blocked = false;
    let done = false;
    const pump = (): void => {
      if (done || blocked) return;
      for (let f = reader.shift(); f; f = reader.shift()) {
        metrics.frames.inc();
        metrics.latency.observe((performance.now() - f.capturedAtMs) / 1000);
        if (!sink.write(f)) {
          blocked = true;
          sink.onceDrain(() => {
            blocked = false;
            pump();
          });
          break;
        }
      }
    };
    const finish = (why: CloseReason | 'cancelled'): void => {
      if (done) return;
      pump();
      done = true;
      if (fork.leave(reader) === 0) {
        session.removeTap(fork);
        if (byFormat?.get(key) === fork) byFormat.delete(key);
        metrics.conversions.dec();
      }
      metrics.listeners.dec();
      opts.signal.removeEventListener('abort', onAbort);
      resolve(why);
    };
    const onAbort = (): void => finish('cancelled');
    const key = `${opts.format.source}/${opts.format.sampleRate}/${opts.format.frameMs}/${opts.format.encoding}/${opts.format.channels}`;
    let byFormat = opts.format.encoding === 'opus' ? undefined : shared.get(session);
    if (opts.format.encoding !== 'opus' && !byFormat) shared.set(session, (byFormat = new Map()));
    const fork = byFormat?.get(key) ?? attach();
    function attach(): AudioFork {
      // No listener of its own: every listener, the first too, is a reader of it.
      const f = new AudioFork({ format: opts.format, maxQueueFrames: 0, onReadable: () => {}, onCallClosed: () => {} });
      byFormat?.set(key, f);
      session.addTap(f);
      metrics.conversions.inc();
      return f;
    }
    const reader = fork.join({ maxQueueFrames: opts.maxQueueFrames, onReadable: pump, onDropped: () => metrics.dropped.inc(), onCallClosed: finish });
    metrics.listeners.inc();
    opts.signal.addEventListener('abort', onAbort);
    opts.onStart?.();
  });
}
