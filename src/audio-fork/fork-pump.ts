import type { CallSession, CloseReason } from '../sessions/call-session.ts';
import { AudioFork, type ForkFormat, type ForkFrame } from './audio-fork.ts';
import type { ForkMetrics } from './fork-metrics.ts';

export interface ForkSink {
  /** Writes one message; false when the transport's buffer is full (wait for drain). */
  write(frame: ForkFrame): boolean;
  onceDrain(cb: () => void): void;
}

/**
 * Attaches a fork to a call and moves its frames to a sink until the call ends or the
 * listener goes away; resolves with why it ended. The call never waits for the listener.
 */
export function runFork(opts: {
  session: CallSession;
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
      for (let f = fork.shift(); f; f = fork.shift()) {
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
      session.removeTap(fork);
      metrics.listeners.dec();
      opts.signal.removeEventListener('abort', onAbort);
      resolve(why);
    };
    const onAbort = (): void => finish('cancelled');
    const fork = new AudioFork({ format: opts.format, maxQueueFrames: opts.maxQueueFrames, onReadable: pump, onDropped: () => metrics.dropped.inc(), onCallClosed: finish });
    metrics.listeners.inc();
    opts.signal.addEventListener('abort', onAbort);
    session.addTap(fork);
    opts.onStart?.();
  });
}
