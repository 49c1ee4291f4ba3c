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
 * The waits of one stream, each raced against `stop` and (for reads) an idle timeout, with
 * one abort listener and one timer for the stream's life: adding and removing an EventTarget
 * listener for every message was 0.6% of the service's busy time at 200 AI calls. Only the
 * wait in progress is reachable from them, so a finished wait's message is not kept alive.
 */
class StreamWaits {
  readonly #stop: AbortSignal;
  readonly #onAbort = (): void => this.#wake?.('stopped');
  #wake: ((why: 'stopped' | 'idle') => void) | null = null;
  /** The wait in progress ends on idleness (a read), not only on stop. */
  #idleArmed = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(stop: AbortSignal) {
    this.#stop = stop;
    stop.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** `p`, or 'stopped' once `stop` aborts, or 'idle' when `idleMs` pass first. */
  until<T>(p: Promise<T>, idleMs?: number): Promise<T | 'stopped' | 'idle'> {
    if (this.#stop.aborted) return Promise.resolve('stopped');
    const interrupted = new Promise<'stopped' | 'idle'>((r) => (this.#wake = r));
    this.#idleArmed = idleMs !== undefined;
    if (idleMs !== undefined) {
      if (this.#timer) this.#timer.refresh();
      else this.#timer = setTimeout(() => this.#idleArmed && this.#wake?.('idle'), idleMs);
    }
    // Cleared also when reading throws (a corrupt packet ends the stream).
    return Promise.race([p, interrupted]).finally(() => {
      this.#wake = null;
      this.#idleArmed = false;
    });
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#stop.removeEventListener('abort', this.#onAbort);
  }
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
  const waits = new StreamWaits(stop);
  const result = (reason: InjectionResult['reason']): InjectionResult => ({ reason, underruns: source.underruns });
  try {
    for (;;) {
      if (session.closed) return result('call_ended');
      const msg = await waits.until(opts.input.next(), opts.idleMs);
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
          if (source.full) await waits.until(new Promise<void>((r) => drainedWaiters.push(r)));
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
    waits.close();
    session.removeSource(source);
    session.off('close', onClose);
  }
}
