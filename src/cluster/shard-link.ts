import type { CallSession } from '../sessions/call-session.ts';
import type { SessionWatcher } from '../sessions/session-registry.ts';
import { LoadSampler } from './load-sampler.ts';
import type { ShardMessage } from './messages.ts';

const LOAD_REPORT_MS = 500;

/**
 * A shard's side of the IPC channel to its supervisor: the calls it opens and closes (the
 * instance's call directory), its load twice a second (placement), and when it is ready.
 */
export class ShardLink implements SessionWatcher {
  readonly #send: (m: ShardMessage) => void;
  #sampler: LoadSampler | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(send: (m: ShardMessage) => void) {
    this.#send = send;
  }

  /** Over Node's IPC channel to the process that forked this one. */
  static toParent(): ShardLink {
    return new ShardLink((m) => {
      if (process.connected) process.send!(m);
    });
  }

  opened(s: CallSession): void {
    this.#send({ type: 'call-opened', call: { callId: s.callId, port: s.port, traceId: s.traceId, tenantId: s.tenantId } });
  }

  closed(s: CallSession): void {
    this.#send({ type: 'call-closed', callId: s.callId, port: s.port });
  }

  ready(sockets: { grpcSocket: string; httpSocket: string }, sessions: () => number): void {
    this.#sampler = new LoadSampler(sessions);
    this.#sampler.start();
    const report = (): void => this.#send({ type: 'load', load: this.#sampler!.read() });
    this.#send({ type: 'ready', ...sockets });
    report();
    this.#timer = setInterval(report, LOAD_REPORT_MS);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#sampler?.stop();
  }
}
