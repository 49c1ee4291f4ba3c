import type { Logger } from '../logging/logger.ts';
import type { AudioSource } from '../media-path/mixer.ts';
import type { CallTap, CloseReason } from '../sessions/call-session.ts';
import type { SourceHost } from '../sessions/media-host.ts';
import { TypedEmitter } from '../util/typed-emitter.ts';
import { TrackTaps, type TapGate } from './participant-track.ts';

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
  readonly #taps: TrackTaps;
  #closeReason: CloseReason | null = null;

  constructor(opts: { conferenceId: string; traceId: string; tenantId: string; log: Logger; gate: TapGate }) {
    super(opts.log);
    this.callId = opts.conferenceId;
    this.traceId = opts.traceId;
    this.tenantId = opts.tenantId;
    this.log = opts.log;
    this.#taps = new TrackTaps(opts.gate);
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
    this.#taps.add(tap);
  }

  removeTap(tap: CallTap): void {
    this.#taps.remove(tap);
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
    this.#taps.deliver(mix);
  }

  close(reason: CloseReason): void {
    if (this.#closeReason) return;
    this.#closeReason = reason;
    this.#taps.close(reason, this.log, "a conference's");
    this.sources.clear();
    this.safeEmit('close', reason);
    this.removeAllListeners();
  }
}
