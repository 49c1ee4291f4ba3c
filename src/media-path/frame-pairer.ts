/** One 20 ms slot: the caller's frame and the service's, null where none. */
export interface FramePair<C = Int16Array> {
  caller: C | null;
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
export class FramePairer<C = Int16Array> {
  readonly stats: PairerStats = { late: 0, dropped: 0 };
  readonly #delay: number;
  readonly #maxQueue: number;
  readonly #service: (Int16Array | null)[] = [];
  readonly #caller: { samples: C; tick: number }[] = [];
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

  /** A caller frame, in the caller's order; the pairer keeps it (the caller must not reuse it). */
  caller(samples: C): void {
    if (this.#caller.length >= this.#maxQueue) {
      this.#caller.shift();
      this.stats.dropped++;
    }
    this.#caller.push({ samples, tick: this.#tick });
  }

  /**
   * One tick: what the service sent (copied), and the slot now due, if any. The pair's service
   * frame stays as it is for `delayFrames + 1` more ticks (use or copy it before then).
   */
  tick(service: Int16Array | null): FramePair<C> | null {
    this.#service.push(service ? this.#copy(service) : null);
    const slot = this.#tick - this.#delay;
    this.#tick++;
    if (slot < 0) return null;
    return { caller: this.#callerFor(slot), service: this.#service.shift()! };
  }

  /** The slots still held, in order: the end of the call. */
  drain(): FramePair<C>[] {
    const out: FramePair<C>[] = [];
    for (const service of this.#service.splice(0)) out.push({ caller: this.#caller.shift()?.samples ?? null, service });
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

  #callerFor(slot: number): C | null {
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
    return this.#caller.shift()!.samples;
  }
}
