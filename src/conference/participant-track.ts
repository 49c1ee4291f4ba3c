import type { Logger } from '../logging/logger.ts';
import { FRAME_SAMPLES, type CallTap, type CloseReason } from '../sessions/call-session.ts';
import type { TapHost } from '../sessions/media-host.ts';

/**
 * Taps that start together: while a group of recordings is being set up (each takes a few
 * awaits), the taps added wait here, and all of them get their first frame on the same
 * conference tick, so the mix and every participant's track line up sample for sample.
 */
export class TapGate {
  held = false;
  readonly #pending: [Set<CallTap>, CallTap][] = [];

  add(into: Set<CallTap>, tap: CallTap): void {
    if (this.held) this.#pending.push([into, tap]);
    else into.add(tap);
  }

  remove(from: Set<CallTap>, tap: CallTap): void {
    from.delete(tap);
    const k = this.#pending.findIndex(([s, t]) => s === from && t === tap);
    if (k >= 0) this.#pending.splice(k, 1);
  }

  /** At the start of a tick: a released group joins now, all of it. */
  admit(): void {
    if (this.held || this.#pending.length === 0) return;
    for (const [into, tap] of this.#pending.splice(0)) into.add(tap);
  }
}

/**
 * The listeners of one conference track (the mix, or a participant's own): every tick each
 * gets the frame, or silence marked concealed, stamped on the conference's clock; they join
 * through the conference's gate so a group of them starts on one tick.
 */
export class TrackTaps {
  readonly #taps = new Set<CallTap>();
  readonly #gate: TapGate;
  #timestamp = 0;

  constructor(gate: TapGate) {
    this.#gate = gate;
  }

  get size(): number {
    return this.#taps.size;
  }

  add(tap: CallTap): void {
    this.#gate.add(this.#taps, tap);
  }

  remove(tap: CallTap): void {
    this.#gate.remove(this.#taps, tap);
  }

  deliver(frame: Int16Array | null): void {
    const ts = this.#timestamp;
    this.#timestamp = (ts + FRAME_SAMPLES) >>> 0;
    if (this.#taps.size === 0) return;
    // Listeners own the frames they are given (a recorder may hold one), so each tick gets its own.
    const samples = frame ? frame.slice() : new Int16Array(FRAME_SAMPLES);
    for (const t of this.#taps) {
      t.inbound?.({ samples, timestamp: ts, concealed: frame === null });
      t.outbound?.(null);
    }
  }

  /** Tells every listener the track ended; one that fails is logged and the rest are still told. */
  close(reason: CloseReason, log: Logger, whose: string): void {
    for (const t of [...this.#taps]) {
      try {
        t.callClosed?.(reason);
      } catch (error) {
        log.error({ event: 'TAP_CLOSE_FAILED', error }, `${whose} listener failed to close`);
      }
    }
    this.#taps.clear();
  }
}

/**
 * One participant's own track: every conference tick, what the conference heard from it
 * (its frame when it was mixed, silence marked concealed when it was not), on the
 * conference's clock, so it lines up with the mix's recording. A recorder listens to it as
 * to a call; it closes when the participant leaves.
 */
export class ParticipantTrack implements TapHost {
  readonly callId: string;
  readonly traceId: string;
  readonly tenantId: string;
  readonly port = 0;
  readonly log: Logger;
  readonly #taps: TrackTaps;
  #closeReason: CloseReason | null = null;

  constructor(opts: { name: string; traceId: string; tenantId: string; log: Logger; gate: TapGate }) {
    this.callId = opts.name;
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

  addTap(tap: CallTap): void {
    this.#taps.add(tap);
  }

  removeTap(tap: CallTap): void {
    this.#taps.remove(tap);
  }

  deliver(frame: Int16Array | null): void {
    this.#taps.deliver(frame);
  }

  close(reason: CloseReason): void {
    if (this.#closeReason) return;
    this.#closeReason = reason;
    this.#taps.close(reason, this.log, "a participant track's");
  }
}
