import { seqDelta, tsDelta } from '../rtp-bridge/rtp-packet.ts';

export interface TimelineFrame {
  /** 20 ms of 16-bit PCM at the call's clock rate; the consumer owns it. */
  samples: Int16Array;
  /** RTP timestamp of the frame's first sample (the caller's clock, continuous). */
  timestamp: number;
  /** True when no packet carried this frame (loss, silence suppression, a stalled phone). */
  concealed: boolean;
}

export interface TimelineStats {
  packets: number;
  late: number;
  /** Times the caller's clock was found behind ours and the stream moved onto it again. */
  rebased: number;
  reordered: number;
  concealedFrames: number;
  resyncs: number;
}

interface Pending {
  seq: number;
  ts: number;
  pcm: Int16Array;
  arrivalMs: number;
}

export interface InboundTimelineOptions {
  clockRate?: number;
  frameSamples?: number;
  /** How long a gap may wait for a reordered packet before it is concealed. */
  reorderWindowMs?: number;
  /** Forward jumps larger than this restart the timeline instead of filling silence. */
  maxFillMs?: number;
  onFrame: (frame: TimelineFrame) => void;
}

const MAX_PENDING = 16;
/**
 * How long packets in sequence must all have come in late, without catching up, before the
 * stream is taken to be behind our clock for good (see #rebaseOnLate).
 */
const REBASE_AFTER_MS = 200;

/**
 * Turns the caller's packets (any ptime, lost, reordered, late, SSRC changes, silence
 * suppression) into a gap-free stream of 20 ms frames on the caller's RTP clock. Packets in
 * order are emitted at once (no added delay); a gap waits at most the reorder window; when
 * packets stop, `tick` keeps the clock running with concealed frames.
 */
export class InboundTimeline {
  readonly stats: TimelineStats = { packets: 0, late: 0, rebased: 0, reordered: 0, concealedFrames: 0, resyncs: 0 };
  readonly #rate: number;
  readonly #frame: number;
  readonly #windowMs: number;
  readonly #maxFill: number;
  readonly #onFrame: (f: TimelineFrame) => void;
  #ssrc: number | null = null;
  /** Added to the caller's timestamps: moves when its clock falls behind ours (see #late). */
  #offset = 0;
  /** Packets in sequence dropped as late, newer than anything played: since when, how far behind. */
  #lateRun: { seq: number; sinceMs: number; behind: number } | null = null;
  #nextTs = 0;
  #lastSeq = 0;
  /** When the sample at #nextTs is due, by the arrival time of the packets so far. */
  #nextDueMs = 0;
  #pending: Pending[] = [];
  #acc: Int16Array;
  #accLen = 0;
  #accTs = 0;
  #accConcealed = false;

  constructor(opts: InboundTimelineOptions) {
    this.#rate = opts.clockRate ?? 8000;
    this.#frame = opts.frameSamples ?? (this.#rate / 50);
    this.#windowMs = opts.reorderWindowMs ?? 40;
    this.#maxFill = ((opts.maxFillMs ?? 2000) * this.#rate) / 1000;
    this.#onFrame = opts.onFrame;
    this.#acc = new Int16Array(this.#frame);
  }

  get started(): boolean {
    return this.#ssrc !== null;
  }

  /**
   * Forgets the stream: the next packet starts it again, live. For a timeline nobody read
   * for a while (its last listener left), so the next one does not get the missed time as
   * a burst of concealed catch-up frames.
   */
  reset(): void {
    this.#ssrc = null;
    this.#pending = [];
    this.#lateRun = null;
    this.#accLen = 0;
  }

  /** One packet's audio; `pcm` becomes the timeline's (its caller never writes it again: a decoder's fresh output). */
  push(arrivalMs: number, seq: number, ts: number, ssrc: number, pcm: Int16Array): void {
    this.stats.packets++;
    if (this.#ssrc !== ssrc) {
      if (this.#ssrc !== null) this.stats.resyncs++;
      this.#restart(ssrc, seq, ts, arrivalMs);
    }
    ts = (ts + this.#offset) >>> 0;
    let d = tsDelta(ts, this.#nextTs);
    if (d + pcm.length > 0) this.#lateRun = null;
    else if (this.#rebaseOnLate(seq, -d, arrivalMs)) {
      this.#offset = (this.#offset - d) >>> 0;
      ts = this.#nextTs;
      d = 0;
    }
    if (d < 0) {
      if (d + pcm.length <= 0) {
        this.stats.late++;
        return;
      }
      // Partly behind the clock (concealment ran ahead of a jittered packet): keep the rest.
      this.#emitPacket(seq, ts - d, pcm.subarray(-d), arrivalMs);
      this.#drain();
      return;
    }
    if (d === 0) {
      this.#emitPacket(seq, ts, pcm, arrivalMs);
      this.#drain();
      return;
    }
    if (seqDelta(seq, this.#lastSeq) === 1) {
      // Nothing is missing: the sender paused (silence suppression) and the timestamp jumped.
      if (d > this.#maxFill) this.#resync(seq, ts, arrivalMs);
      else this.#conceal(d);
      this.#emitPacket(seq, ts, pcm, arrivalMs);
      this.#drain();
      return;
    }
    if (d > this.#maxFill) {
      this.#resync(seq, ts, arrivalMs);
      this.#emitPacket(seq, ts, pcm, arrivalMs);
      return;
    }
    this.#insertPending({ seq, ts, pcm, arrivalMs });
    if (this.#pending.length > MAX_PENDING) this.#concealToFirstPending();
  }

  /** Called on the service clock: conceals what is overdue beyond the reorder window. */
  tick(nowMs: number): void {
    if (this.#ssrc === null) return;
    const samplesPerMs = this.#rate / 1000;
    for (let guard = 0; guard < 500 && nowMs > this.#nextDueMs + this.#windowMs; guard++) {
      if (this.#pending.length > 0) {
        this.#concealToFirstPending();
        continue;
      }
      const n = this.#frame - this.#accLen;
      this.#conceal(n);
      this.#nextDueMs += n / samplesPerMs;
    }
  }

  /**
   * A packet wholly behind the clock. A reordered straggler or the head of a catch-up burst
   * is dropped; but when the stream resumed after a stall without catching up (a phone whose
   * audio device paused, a PBX that stalled), every packet from now on would be late. Packets
   * in sequence, all late for REBASE_AFTER_MS without getting a frame less behind, show it (a
   * catch-up burst gets less late with every packet): the stream moves onto our clock
   * (the caller's later timestamps shift; ours stay continuous) and plays on.
   */
  #rebaseOnLate(seq: number, behind: number, arrivalMs: number): boolean {
    if (seqDelta(seq, this.#lastSeq) <= 0) return false;
    const run = this.#lateRun;
    const next = run ? seqDelta(seq, run.seq) : 0;
    if (!run || next < 1 || next > 3) {
      this.#lateRun = { seq, sinceMs: arrivalMs, behind };
      return false;
    }
    run.seq = seq;
    if (behind < run.behind - this.#frame) {
      // Catching up: watch again from here.
      run.behind = behind;
      run.sinceMs = arrivalMs;
      return false;
    }
    if (arrivalMs - run.sinceMs < REBASE_AFTER_MS) return false;
    this.#lateRun = null;
    this.#pending = [];
    this.stats.rebased++;
    return true;
  }

  #restart(ssrc: number, seq: number, ts: number, arrivalMs: number): void {
    this.#ssrc = ssrc;
    this.#offset = 0;
    this.#lateRun = null;
    this.#pending = [];
    this.#resync(seq, ts, arrivalMs);
  }

  #resync(seq: number, ts: number, arrivalMs: number): void {
    // Packets held for a gap belong to the stream before the jump; kept, two jumps that add
    // up past half the 32-bit clock made them look 2^31 samples ahead (hours to conceal).
    this.#pending = [];
    this.#nextTs = ts;
    this.#lastSeq = (seq - 1) & 0xffff;
    this.#nextDueMs = arrivalMs;
  }

  #insertPending(p: Pending): void {
    if (this.#pending.some((q) => q.seq === p.seq)) return;
    this.stats.reordered++;
    let i = this.#pending.length;
    while (i > 0 && tsDelta(this.#pending[i - 1]!.ts, p.ts) > 0) i--;
    this.#pending.splice(i, 0, p);
  }

  #concealToFirstPending(): void {
    const first = this.#pending[0];
    if (!first) return;
    const gap = tsDelta(first.ts, this.#nextTs);
    if (gap > this.#maxFill) {
      // Never expected (a gap is at most maxFill when it is held): drop it rather than conceal it.
      this.#pending.shift();
      return;
    }
    if (gap > 0) this.#conceal(gap);
    this.#drain();
  }

  #drain(): void {
    while (this.#pending.length > 0) {
      const p = this.#pending[0]!;
      const d = tsDelta(p.ts, this.#nextTs);
      if (d > 0) return;
      this.#pending.shift();
      if (d + p.pcm.length <= 0) {
        this.stats.late++;
        continue;
      }
      this.#emitPacket(p.seq, p.ts - d, p.pcm.subarray(-d), p.arrivalMs);
    }
  }

  #emitPacket(seq: number, _ts: number, pcm: Int16Array, arrivalMs: number): void {
    this.#lastSeq = seq;
    this.#append(pcm, false);
    this.#nextDueMs = Math.max(this.#nextDueMs, arrivalMs + (pcm.length * 1000) / this.#rate);
  }

  #conceal(samples: number): void {
    const zeros = new Int16Array(Math.min(samples, this.#frame));
    let left = samples;
    while (left > 0) {
      const n = Math.min(left, zeros.length);
      this.#append(zeros.subarray(0, n), true);
      left -= n;
    }
  }

  #append(pcm: Int16Array, concealed: boolean): void {
    // The usual packet: one whole frame, on a frame boundary. It is handed on as it is: what
    // is pushed becomes the timeline's (a decoder's fresh output) and is not written again.
    if (this.#accLen === 0 && pcm.length === this.#frame && !concealed) {
      this.#nextTs = (this.#nextTs + pcm.length) >>> 0;
      this.#onFrame({ samples: pcm, timestamp: (this.#nextTs - pcm.length) >>> 0, concealed: false });
      return;
    }
    let off = 0;
    while (off < pcm.length) {
      if (this.#accLen === 0) {
        this.#accTs = this.#nextTs;
        this.#accConcealed = true;
      }
      const n = Math.min(pcm.length - off, this.#frame - this.#accLen);
      this.#acc.set(pcm.subarray(off, off + n), this.#accLen);
      this.#accLen += n;
      this.#nextTs = (this.#nextTs + n) >>> 0;
      off += n;
      if (!concealed) this.#accConcealed = false;
      if (this.#accLen === this.#frame) {
        const samples = this.#acc;
        this.#acc = new Int16Array(this.#frame);
        this.#accLen = 0;
        if (this.#accConcealed) this.stats.concealedFrames++;
        this.#onFrame({ samples, timestamp: this.#accTs, concealed: this.#accConcealed });
      }
    }
  }
}
