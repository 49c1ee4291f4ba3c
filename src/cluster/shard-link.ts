import type { CallSession } from '../sessions/call-session.ts';
import type { ConferenceSnapshot } from '../conference/conference-snapshot.ts';
import type { SessionWatcher } from '../sessions/session-registry.ts';
import { LoadSampler } from './load-sampler.ts';
import type { CallSnapshot } from '../sessions/call-snapshot.ts';
import { isShardMessage, type ShardMessage, type SupervisorMessage } from './messages.ts';

const LOAD_REPORT_MS = 500;


/** What a restarted shard carries on. */
export interface Restore {
  calls: CallSnapshot[];
  conferences: ConferenceSnapshot[];
}
/**
 * A shard's side of the IPC channel to its supervisor: the calls it opens and closes (the
 * instance's call directory), its load and every call's snapshot twice a second (placement,
 * and carrying calls on after a crash), and when it is ready.
 */
export class ShardLink implements SessionWatcher {
  readonly #send: (m: ShardMessage) => void;
  readonly #receive: (handler: (m: SupervisorMessage) => void) => () => void;
  #sampler: LoadSampler | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(send: (m: ShardMessage) => void, receive: (handler: (m: SupervisorMessage) => void) => () => void) {
    this.#send = send;
    this.#receive = receive;
  }

  /** Over Node's IPC channel to the process that forked this one. */
  static toParent(): ShardLink {
    return new ShardLink(
      (m) => {
        if (process.connected) process.send!(m);
      },
      (handler) => {
        const on = (m: unknown): void => {
          if (isShardMessage(m as ShardMessage)) handler(m as SupervisorMessage);
        };
        process.on('message', on);
        return () => process.off('message', on);
      },
    );
  }

  /** The calls and conferences this shard's previous process was carrying (none on a first start). */
  restoreList(timeoutMs = 5000): Promise<Restore> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        stop();
        resolve({ calls: [], conferences: [] });
      }, timeoutMs);
      const stop = this.#receive((m) => {
        if (m.type !== 'restore') return;
        clearTimeout(timer);
        stop();
        resolve({ calls: m.calls, conferences: m.conferences });
      });
      this.#send({ type: 'hello' });
    });
  }

  /** Every message of the supervisor, from now on. */
  listen(handler: (m: SupervisorMessage) => void): void {
    this.#receive(handler);
  }

  send(m: ShardMessage): void {
    this.#send(m);
  }

  lost(snap: CallSnapshot, reason: string): void {
    this.#send({ type: 'call-lost', callId: snap.callId, port: snap.port, reason });
  }

  opened(s: CallSession): void {
    this.#send({ type: 'call-opened', call: { callId: s.callId, port: s.port, traceId: s.traceId, tenantId: s.tenantId }, snapshot: s.snapshot() });
  }

  closed(s: CallSession): void {
    this.#send({ type: 'call-closed', callId: s.callId, port: s.port });
  }

  ready(
    sockets: { grpcSocket: string; httpSocket: string; servesConnections: boolean },
    sessions: { readonly size: number; all(): Iterable<CallSession> },
    /** What the snapshot of a call holds beyond the call itself: its bridge, its recording. */
    extra: (s: CallSession) => Pick<CallSnapshot, 'bridgedWith' | 'recording'> = () => ({}),
  ): void {
    this.#sampler = new LoadSampler(() => sessions.size);
    this.#sampler.start();
    const report = (): void => {
      this.#send({ type: 'load', load: this.#sampler!.read() });
      const calls: CallSnapshot[] = [];
      for (const s of sessions.all()) {
        calls.push({ ...s.snapshot(), ...extra(s) });
      }
      if (calls.length > 0) this.#send({ type: 'snapshots', calls });
    };
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
