import type { Logger } from '../logging/logger.ts';
import type { AudioSource } from '../media-path/mixer.ts';
import { FRAME_SAMPLES, type CallTap, type CloseReason } from '../sessions/call-session.ts';
import type { SourceHost } from '../sessions/media-host.ts';
import { TypedEmitter } from '../util/typed-emitter.ts';
import type { TapGate } from './participant-track.ts';

/**
 * A conference's whole mix as something recorders and forks listen to, and injected audio
 * speaks into, exactly as they do with a call: every tick its taps get the mix of everyone
 * heard (silence, marked concealed, while nobody is), gap-free on the conference's clock;
 * its sources are heard by every participant. It closes with the conference.
 */
export class ConferenceMix extends TypedEmitter<{ close: [CloseReason] }> implements SourceHost {
  readonly callId: string;
  readonly traceId: string;
  readonly tenantId: string;
  readonly port = 0;
  readonly log: Logger;
  readonly sources = new Set<AudioSource>();
  readonly #taps = new Set<CallTap>();
  #timestamp = 0;
  #closeReason: CloseReason | null = null;

  readonly #gate: TapGate;

  constructor(opts: { conferenceId: string; traceId: string; tenantId: string; log: Logger; gate: TapGate }) {
    super(opts.log);
    this.callId = opts.conferenceId;
    this.traceId = opts.traceId;
    this.tenantId = opts.tenantId;
    this.log = opts.log;
    this.#gate = opts.gate;
  }

  get closed(): boolean {
    return this.#closeReason !== null;
  }

  get closeReason(): CloseReason | null {
    return this.#closeReason;
  }

  get listened(): boolean {
    return this.#taps.size > 0;
  }

  addTap(tap: CallTap): void {
    this.#gate.add(this.#taps, tap);
  }

  removeTap(tap: CallTap): void {
    this.#gate.remove(this.#taps, tap);
  }

  addSource(source: AudioSource): void {
    this.sources.add(source);
  }

  removeSource(source: AudioSource): void {
    this.sources.delete(source);
  }

  /** The conference ticks every 20 ms anyway: a talk spurt starts on its next tick. */
  audioQueued(): void {}

  /** This tick's mix (null: nobody was heard). */
  deliver(mix: Int16Array | null): void {
    const ts = this.#timestamp;
    this.#timestamp = (ts + FRAME_SAMPLES) >>> 0;
    if (this.#taps.size === 0) return;
    // Listeners own the frames they are given (a recorder may hold one), so each tick gets its own.
    const samples = mix ? mix.slice() : new Int16Array(FRAME_SAMPLES);
    for (const t of this.#taps) {
      t.inbound?.({ samples, timestamp: ts, concealed: mix === null });
      t.outbound?.(null);
    }
  }

  close(reason: CloseReason): void {
    if (this.#closeReason) return;
    this.#closeReason = reason;
    for (const t of [...this.#taps]) {
      try {
        t.callClosed?.(reason);
      } catch (error) {
        this.log.error({ event: 'TAP_CLOSE_FAILED', error }, 'a conference listener failed to close');
      }
    }
    this.#taps.clear();
    this.sources.clear();
    this.safeEmit('close', reason);
    this.removeAllListeners();
  }
}
