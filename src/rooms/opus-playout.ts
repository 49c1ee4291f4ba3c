import { OpusFrameDecoder } from '../codecs/opus.ts';
import type { AudioSource } from '../media-path/mixer.ts';
import { seqDelta } from '../rtp-bridge/rtp-packet.ts';

const FRAME = 160;
const MAX_PACKETS = 50;
/** A sequence jump this large is a new stream (restart, SSRC change), not loss. */
const RESYNC_GAP = 100;
/** Frames beyond the playout delay tolerated before a backlog is cut back at once. */
const CATCH_UP_SLACK = 5;
/** A sender whose clock runs fast leaves one frame too many this long: drop a quiet one. */
const DRIFT_TICKS = 25;
/** ...or any one, if no quiet frame came for this long. */
const DRIFT_FORCE_TICKS = 150;
/** Below this mean square (about -45 dBov) a frame is quiet enough to drop unheard. */
const QUIET_MEAN_SQUARE = (32768 * 10 ** (-45 / 20)) ** 2;

export interface PlayoutStats {
  packets: number;
  concealed: number;
  late: number;
  overflow: number;
  corrupt: number;
  underruns: number;
  /** Packets skipped to bring a backlog (after a stall or a burst) back to the playout delay. */
  skipped: number;
}

/**
 * Opus RTP from a browser (through the router) played into a call's mix at 8 kHz: packets
 * are held for a small playout delay, put back in order, decoded when due, and a missing
 * one is concealed by libopus when later packets show it was lost. Bounded: beyond
 * MAX_PACKETS the newest is refused and counted.
 */
export class OpusPlayout implements AudioSource {
  readonly stats: PlayoutStats = { packets: 0, concealed: 0, late: 0, overflow: 0, corrupt: 0, underruns: 0, skipped: 0 };
  /** What this source added to the last mixed frame (for the mix-minus of the phone's leg). */
  readonly contribution = new Int16Array(FRAME);
  contributed = false;
  readonly #decoder = new OpusFrameDecoder({ sampleRate: 8000 });
  readonly #packets = new Map<number, Uint8Array>();
  readonly #delayFrames: number;
  #next: number | null = null;
  #ssrc: number | null = null;
  #playing = false;
  #excessTicks = 0;
  #pcm = new Int16Array(FRAME * 8);
  #pcmLen = 0;

  constructor(opts: { delayMs: number }) {
    this.#delayFrames = Math.max(1, Math.round(opts.delayMs / 20));
  }

  /** Packets waiting to be played. */
  get queued(): number {
    return this.#packets.size;
  }

  push(ssrc: number, seq: number, payload: Uint8Array): void {
    this.stats.packets++;
    if (ssrc !== this.#ssrc) this.#reset(ssrc);
    if (this.#next === null) this.#next = seq;
    const d = seqDelta(seq, this.#next);
    if (d < 0) {
      if (d > -RESYNC_GAP) {
        this.stats.late++;
        return;
      }
      this.#reset(ssrc);
      this.#next = seq;
    } else if (d > RESYNC_GAP) {
      this.#reset(ssrc);
      this.#next = seq;
    }
    if (this.#packets.size >= MAX_PACKETS) {
      this.stats.overflow++;
      return;
    }
    this.#packets.set(seq, payload.slice());
  }

  mixInto(acc: Int32Array): boolean {
    this.contributed = false;
    if (!this.#playing) {
      if (this.#packets.size < this.#delayFrames) return false;
      this.#playing = true;
    }
    this.#catchUp();
    // Senders' clocks differ from ours by a fraction of a percent (Chromium's fake capture by
    // about 2 %): a standing extra frame is dropped where it is quiet, so latency stays put.
    this.#excessTicks = this.#packets.size > this.#delayFrames + 1 ? this.#excessTicks + 1 : 0;
    while (this.#pcmLen < FRAME && this.#pullOne());
    if (this.#excessTicks >= DRIFT_TICKS && this.#pcmLen >= FRAME && (this.#excessTicks >= DRIFT_FORCE_TICKS || quiet(this.#pcm, FRAME))) {
      this.#pcm.copyWithin(0, FRAME, this.#pcmLen);
      this.#pcmLen -= FRAME;
      this.stats.skipped++;
      this.#excessTicks = 0;
      while (this.#pcmLen < FRAME && this.#pullOne());
    }
    if (this.#pcmLen === 0) {
      this.#playing = false;
      this.stats.underruns++;
      return false;
    }
    const n = Math.min(FRAME, this.#pcmLen);
    this.contribution.fill(0);
    for (let i = 0; i < n; i++) {
      const v = this.#pcm[i]!;
      acc[i]! += v;
      this.contribution[i] = v;
    }
    this.#pcm.copyWithin(0, n, this.#pcmLen);
    this.#pcmLen -= n;
    this.contributed = true;
    return true;
  }

  /**
   * A backlog well beyond the playout delay (the sender burst after a stall, or this side
   * stalled) would stay as added latency for the rest of the call: the oldest packets are
   * skipped instead, one short gap now rather than a long delay forever.
   */
  #catchUp(): void {
    const excess = this.#packets.size - (this.#delayFrames + CATCH_UP_SLACK);
    if (excess <= 0 || this.#next === null) return;
    for (let dropped = 0; dropped < excess + CATCH_UP_SLACK && this.#packets.size > this.#delayFrames + 1; ) {
      if (this.#packets.delete(this.#next)) {
        dropped++;
        this.stats.skipped++;
      }
      this.#next = (this.#next + 1) & 0xffff;
    }
    this.#pcmLen = 0;
    this.#excessTicks = 0;
  }

  /** Decodes the packet that is due; false when nothing is left to play. */
  #pullOne(): boolean {
    if (this.#next === null || this.#packets.size === 0) return false;
    const payload = this.#packets.get(this.#next);
    let pcm: Int16Array;
    try {
      if (payload) {
        this.#packets.delete(this.#next);
        pcm = this.#decoder.decode(payload);
      } else {
        // Later packets are here and this one is not: it was lost. Conceal it.
        this.stats.concealed++;
        pcm = this.#decoder.decode(null);
      }
    } catch {
      this.stats.corrupt++;
      pcm = new Int16Array(FRAME);
    }
    this.#next = (this.#next + 1) & 0xffff;
    if (this.#pcmLen + pcm.length > this.#pcm.length) {
      const grown = new Int16Array(this.#pcmLen + pcm.length);
      grown.set(this.#pcm.subarray(0, this.#pcmLen));
      this.#pcm = grown;
    }
    this.#pcm.set(pcm, this.#pcmLen);
    this.#pcmLen += pcm.length;
    return true;
  }

  #reset(ssrc: number): void {
    this.#ssrc = ssrc;
    this.#packets.clear();
    this.#next = null;
    this.#playing = false;
    this.#pcmLen = 0;
  }
}

function quiet(pcm: Int16Array, n: number): boolean {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += pcm[i]! * pcm[i]!;
  return sum / n < QUIET_MEAN_SQUARE;
}
