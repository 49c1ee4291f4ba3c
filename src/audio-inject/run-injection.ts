import { CALL_RATE } from '../sessions/call-session.ts';
import type { SourceHost } from '../sessions/media-host.ts';
import { InjectionSource, type MarkReached } from './injection-source.ts';

export interface InjectionInput {
  /** The next message from the client, or null when it finished sending. */
  next(): Promise<InjectionCommand | null>;
}

export type InjectionCommand = { kind: 'audio'; pcm: Int16Array } | { kind: 'keepalive' } | { kind: 'clear' } | { kind: 'mark'; name: string };

export interface InjectionOutput {
  mark(m: MarkReached): void;
  cleared(droppedMs: number): void;
  underrun(count: number): void;
}

export interface InjectionResult {
  reason: 'completed' | 'call_ended' | 'idle' | 'cancelled';
  underruns: number;
}

/**
 * `p`, or 'stopped' once `stop` aborts, or 'idle' after `idleMs`. The abort listener and the
 * timer go with each wait: a promise that lives as long as the stream and is raced against
 * every message would keep each message (and its audio) reachable until the stream ends.
 */
function untilStopped<T>(p: Promise<T>, stop: AbortSignal, idleMs?: number): Promise<T | 'stopped' | 'idle'> {
  if (stop.aborted) return Promise.resolve('stopped');
  let onAbort!: () => void;
  let timer: NodeJS.Timeout | undefined;
  const interrupted = new Promise<'stopped' | 'idle'>((r) => {
    onAbort = () => r('stopped');
    stop.addEventListener('abort', onAbort, { once: true });
    if (idleMs !== undefined) timer = setTimeout(() => r('idle'), idleMs);
  });
  // Cleared also when reading throws (a corrupt packet ends the stream).
  return Promise.race([p, interrupted]).finally(() => {
    clearTimeout(timer);
    stop.removeEventListener('abort', onAbort);
  });
}

/**
 * Runs one client's audio into a call until the client is done and its audio has played,
 * the call ends, the stream goes idle, or the client cancels. Reading waits while the queue
 * is full: that is the back-pressure the client feels (HTTP/2 flow control).
 */
export async function runInjection(opts: {
  session: SourceHost;
  inputRate: number;
  maxBufferMs: number;
  idleMs: number;
  input: InjectionInput;
  output: InjectionOutput;
  signal: AbortSignal;
}): Promise<InjectionResult> {
  const { session, output, signal } = opts;
  const ended = new AbortController();
  const onClose = (): void => ended.abort();
  session.on('close', onClose);
  let drainedWaiters: (() => void)[] = [];
  const source = new InjectionSource({
    inputRate: opts.inputRate,
    callRate: CALL_RATE,
    maxBufferMs: opts.maxBufferMs,
    events: {
      mark: (m) => output.mark(m),
      underrun: () => output.underrun(source.underruns),
      drained: () => {
        const w = drainedWaiters;
        drainedWaiters = [];
        for (const f of w) f();
      },
    },
  });
  session.addSource(source);
  const stop = AbortSignal.any([ended.signal, signal]);
  const result = (reason: InjectionResult['reason']): InjectionResult => ({ reason, underruns: source.underruns });
  try {
    for (;;) {
      if (session.closed) return result('call_ended');
      const msg = await untilStopped(opts.input.next(), stop, opts.idleMs);
      if (msg === 'stopped') return result(signal.aborted ? 'cancelled' : 'call_ended');
      if (msg === 'idle' || msg === null) {
        source.flushInput();
        // The client is done: play out what it sent before answering.
        while (source.bufferedSamples() > 0 && !stop.aborted) await new Promise((r) => setTimeout(r, 20));
        if (stop.aborted) return result(signal.aborted ? 'cancelled' : 'call_ended');
        return result(msg === 'idle' ? 'idle' : 'completed');
      }
      switch (msg.kind) {
        case 'audio':
          source.push(msg.pcm);
          // A talk spurt starting now goes out on the next clock slot, not the call's own.
          if (msg.pcm.length > 0) session.audioQueued();
          if (source.full) await untilStopped(new Promise<void>((r) => drainedWaiters.push(r)), stop);
          break;
        case 'clear':
          output.cleared(Math.round((source.clear() * 1000) / CALL_RATE));
          break;
        case 'mark':
          source.mark(msg.name);
          break;
        case 'keepalive':
          break;
      }
    }
  } finally {
    session.removeSource(source);
    session.off('close', onClose);
  }
}
