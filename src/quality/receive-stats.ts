/**
 * What a receiver knows of one RTP stream (RFC 3550 appendix A.1 and A.8): packets received
 * and expected from the extended sequence number, loss (cumulative, and the fraction since the
 * last report), and interarrival jitter, in the stream's timestamp units.
 */
/** RFC 3550 A.1: a forward jump larger than this is a restart, not loss. */
const MAX_DROPOUT = 3000;

export class ReceiveStats {
  readonly clockRate: number;
  received = 0;
  #ssrc = -1;
  #base = 0;
  #maxSeq = 0;
  #cycles = 0;
  #lastTs = -1;
  #transit = 0;
  #jitter = 0;
  #expectedPrior = 0;
  #receivedPrior = 0;
  /** Loss of the streams before the current one (an SSRC change, a restart). */
  #lostBefore = 0;
  /**
   * The pattern of the loss, from the gaps in the sequence as packets arrive: how many runs of
   * consecutive missing packets (a run a reordered packet later fills still counts), and the
   * longest. Isolated losses make many runs of 1; a burst makes one long run.
   */
  lossBursts = 0;
  longestLossBurst = 0;

  constructor(clockRate: number) {
    this.clockRate = clockRate;
  }

  /**
   * One packet of the stream, with when it arrived (ms). A new SSRC, or a sequence jump past
   * MAX_DROPOUT (RFC 3550 A.1: the sender restarted), starts the counts again.
   */
  packet(ssrc: number, seq: number, ts: number, arrivalMs: number): void {
    const jump = (seq - this.#maxSeq) & 0xffff;
    if (ssrc !== this.#ssrc || (jump > MAX_DROPOUT && jump < 0x8000)) this.#start(ssrc, seq);
    const delta = (seq - this.#maxSeq) & 0xffff;
    if (delta < 0x8000) {
      if (seq < this.#maxSeq && delta !== 0) this.#cycles += 0x10000;
      if (delta !== 0) this.#maxSeq = seq;
      if (delta > 1 && this.received > 0) {
        this.lossBursts++;
        if (delta - 1 > this.longestLossBurst) this.longestLossBurst = delta - 1;
      }
    }
    this.received++;
    // Repeats of one timestamp (DTMF updates and end packets) carry no new timing.
    if (ts === this.#lastTs) return;
    const arrival = (arrivalMs * this.clockRate) / 1000;
    const transit = arrival - ts;
    if (this.#lastTs >= 0) {
      let d = transit - this.#transit;
      // Timestamps wrap at 2^32: a difference is the short way round.
      if (d > 2 ** 31) d -= 2 ** 32;
      else if (d < -(2 ** 31)) d += 2 ** 32;
      this.#jitter += (Math.abs(d) - this.#jitter) / 16;
    }
    this.#transit = transit;
    this.#lastTs = ts;
  }

  #start(ssrc: number, seq: number): void {
    this.#lostBefore += Math.max(0, this.lost);
    this.#ssrc = ssrc;
    this.#base = seq;
    this.#maxSeq = seq;
    this.#cycles = 0;
    this.received = 0;
    this.#lastTs = -1;
    this.#expectedPrior = 0;
    this.#receivedPrior = 0;
  }

  get ssrc(): number {
    return this.#ssrc;
  }

  get extendedMax(): number {
    return this.#cycles + this.#maxSeq;
  }

  get expected(): number {
    return this.received === 0 ? 0 : this.extendedMax - this.#base + 1;
  }

  /** Packets expected and not received (duplicates can make it negative, as RFC 3550 says). */
  get lost(): number {
    return this.expected - this.received;
  }

  /** Loss of every stream the phone sent on this call: it never goes down. */
  get lostAllStreams(): number {
    return this.#lostBefore + Math.max(0, this.lost);
  }

  /** Interarrival jitter in timestamp units. */
  get jitter(): number {
    return this.#jitter;
  }

  get jitterMs(): number {
    return (this.#jitter * 1000) / this.clockRate;
  }

  /** Loss over the whole stream, 0..1. */
  get lossRatio(): number {
    const e = this.expected;
    return e > 0 ? Math.max(0, this.lost) / e : 0;
  }

  /** The fraction lost since the previous call (a report interval), 0..1. */
  takeIntervalLoss(): number {
    const expected = this.expected - this.#expectedPrior;
    const received = this.received - this.#receivedPrior;
    this.#expectedPrior = this.expected;
    this.#receivedPrior = this.received;
    const lost = expected - received;
    return expected > 0 && lost > 0 ? lost / expected : 0;
  }
}
