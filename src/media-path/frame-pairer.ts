/** The caller's side of a slot: a copy the pairer owns, valid until its next `tick()`. */
export interface PairedCaller {
  samples: Int16Array;
  /** What the caller's frame carried (its RTP timestamp, whether it was concealed). */
  timestamp: number;
  concealed: boolean;
}

/** One 20 ms slot: the caller's frame and the service's, null where none. */
export interface FramePair {
  caller: PairedCaller | null;
  service: Int16Array | null;
}

export interface PairerStats {
  /** Slots where the caller's stream was running but its frame came too late to be placed. */
  late: number;
  /** Caller frames dropped because the caller's clock ran ahead of ours by the whole cushion. */
  dropped: number;
}

/**
 * Used by recordings and by forks that carry both sides (stereo, mixed).
 *
 * Puts the caller's frames (arriving with their packets, jittered) beside the service's
 * (one per clock tick) in the slot where each was heard, so the two sides of a recording
 * keep their timing.
 *
 * Both sides are written `delayFrames` ticks late: a caller frame that arrives up to that
 * much after its slot (jitter, the timeline's reorder window) still lands in it. Pairing
 * them first come, first served instead shifted every later word of the caller by a frame
 * each time a packet came after the tick. Beyond the cushion the caller is moved one slot
 * later (nothing is lost, the shift is counted); a caller clock running faster than ours
 * fills `maxQueue` and then its oldest frame goes. The output has one pair per tick: the
 * first `delayFrames` ticks give none, and `drain` gives them at the end.
 */
export class FramePairer {
  readonly stats: PairerStats = { late: 0, dropped: 0 };
  readonly #delay: number;
  readonly #maxQueue: number;
  readonly #service: (Int16Array | null)[] = [];
  /**
   * The caller's frames waiting for their slot, each copied into a slot of the pairer's own.
   * Keeping the caller's arrays instead kept a recorded call's decoded frames alive across
   * young collections (heap samples between two full ones showed them), and their external
   * memory brought full collections on: 0.3 a second at 200 recorded calls, each pausing the
   * loop 20-50 ms with what waited behind it, against 0.2 with copies.
   */
  readonly #caller: CallerSlot[] = [];
  readonly #free: CallerSlot[] = [];
  /** The slot the last pair handed out: it goes back to `#free` on the next tick. */
  #lent: CallerSlot | null = null;
  /**
   * The service's frames are copied into these in turn: a frame waits `delay` ticks, and the
   * pair that returns it is used before `delay + 1` more ticks, so the slots are reused and a
   * tick allocates no copy.
   */
  readonly #copies: Int16Array[];
  #tick = 0;
  #callerStarted = false;

  constructor(opts: { delayFrames: number; maxQueue: number }) {
    this.#delay = opts.delayFrames;
    this.#maxQueue = opts.maxQueue;
    this.#copies = Array.from({ length: opts.delayFrames + 2 }, () => new Int16Array(0));
  }

  /** A caller frame, in the caller's order; it is copied (the caller may reuse its array). */
  caller(samples: Int16Array, timestamp = 0, concealed = false): void {
    if (this.#caller.length >= this.#maxQueue) {
      this.#free.push(this.#caller.shift()!);
      this.stats.dropped++;
    }
    let slot = this.#free.pop();
    if (!slot || slot.samples.length !== samples.length) slot = { samples: new Int16Array(samples.length), timestamp: 0, concealed: false, tick: 0 };
    slot.samples.set(samples);
    slot.timestamp = timestamp;
    slot.concealed = concealed;
    slot.tick = this.#tick;
    this.#caller.push(slot);
  }

  /**
   * One tick: what the service sent (copied), and the slot now due, if any. The pair's caller
   * stays as it is until the next tick, its service frame for `delayFrames + 1` more ticks
   * (use or copy them before then).
   */
  tick(service: Int16Array | null): FramePair | null {
    if (this.#lent) this.#free.push(this.#lent);
    this.#lent = null;
    this.#service.push(service ? this.#copy(service) : null);
    const slot = this.#tick - this.#delay;
    this.#tick++;
    if (slot < 0) return null;
    return { caller: this.#callerFor(slot), service: this.#service.shift()! };
  }

  /** The slots still held, in order: the end of the call. */
  drain(): FramePair[] {
    const out: FramePair[] = [];
    for (const service of this.#service.splice(0)) out.push({ caller: this.#caller.shift() ?? null, service });
    this.#caller.length = 0;
    return out;
  }

  #copy(service: Int16Array): Int16Array {
    const at = this.#tick % this.#copies.length;
    let copy = this.#copies[at]!;
    if (copy.length !== service.length) this.#copies[at] = copy = new Int16Array(service.length);
    copy.set(service);
    return copy;
  }

  #callerFor(slot: number): PairedCaller | null {
    const next = this.#caller[0];
    if (!this.#callerStarted) {
      // The caller's first frame goes in the slot it arrived in; so does everything after it.
      if (!next || next.tick > slot) return null;
      this.#callerStarted = true;
    }
    if (!next) {
      this.stats.late++;
      return null;
    }
    this.#lent = this.#caller.shift()!;
    return this.#lent;
  }
}

interface CallerSlot extends PairedCaller {
  /** The tick it arrived in. */
  tick: number;
}
