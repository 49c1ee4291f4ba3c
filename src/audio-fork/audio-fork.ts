import { encodeG711 } from '../codecs/g711.ts';
import { OpusFrameEncoder } from '../codecs/opus.ts';
import { Resampler } from '../codecs/resampler.ts';
import { FramePairer, type PairedCaller } from '../media-path/frame-pairer.ts';
import type { TimelineFrame } from '../media-path/inbound-timeline.ts';
import { tsDelta } from '../rtp-bridge/rtp-packet.ts';
import type { CallTap, CloseReason } from '../sessions/call-session.ts';
import { Framer } from './framer.ts';
import { ForkReader, type ForkReaderOptions } from './fork-reader.ts';

export type ForkSource = 'caller' | 'service' | 'mixed' | 'stereo';
export type ForkEncoding = 'pcm' | 'pcmu' | 'pcma' | 'opus';

export interface ForkFormat {
  source: ForkSource;
  sampleRate: number;
  frameMs: number;
  encoding: ForkEncoding;
  channels: number;
}

export interface ForkFrame {
  data: Buffer;
  /** The caller's RTP clock (8 kHz) at the frame's first sample: continuous, gap-free. */
  rtpTimestamp: number;
  /** Frames produced by this fork so far, starting at 0 (drops included). */
  sequence: number;
  /** Part of the frame had no packet behind it (loss or silence suppression). */
  concealed: boolean;
  /** When the last audio of this frame reached the service (performance.now()), for latency beyond framing. */
  capturedAtMs: number;
  /** The frame a shared fork made, of which this is one listener's view: what its listeners share (one encoded message). */
  origin?: ForkFrame;
  /** The frame as the edge that writes it encodes it, kept for the frame's other listeners. */
  encoded?: unknown;
}

export const FORK_RATES = [8000, 16000, 24000, 48000] as const;
export const FORK_FRAME_MS = [10, 20, 40, 60, 100] as const;

const CALL_RATE = 8000;
const CALL_FRAME = 160;
/** A frame of silence for a side that had none: read, never written. */
const SILENCE = new Int16Array(CALL_FRAME);
/** Caller frames a fork of both sides (mixed, stereo) keeps waiting for their slot at most. */
const INBOUND_CUSHION = 50;
/**
 * How late (in ticks) a caller frame may come and still sit beside what the service sent
 * when it was heard: the timeline's reorder window (40 ms), a tick, and jitter. Without it a
 * packet that came after its tick shifted the caller a frame later for the rest of the call.
 */
const PAIRING_DELAY_FRAMES = 4;

/**
 * One listener's copy of a call's audio, converted to the listener's format. The caller's
 * audio is forwarded the moment its packet is placed on the timeline (no added delay);
 * audio that needs the service's side waits for the service clock. Frames go into a
 * bounded queue that drops its oldest when the listener stops reading.
 */
export class AudioFork implements CallTap {
  readonly format: ForkFormat;
  readonly #queue: ForkFrame[] = [];
  readonly #maxQueue: number;
  readonly #framer: Framer;
  readonly #resamplers: Resampler[];
  /** Where each channel's resampled samples land before the framer copies them (no allocation per frame). */
  readonly #converted: Int16Array[];
  #interleaved = new Int16Array(0);
  /** The mixed source's frame, reused: `#produce` copies what it is given before it returns. */
  readonly #mixed = new Int16Array(CALL_FRAME);
  /** Caller ticks the resampled audio lags the caller's clock: frame timestamps say so. */
  readonly #lag: number;
  /** Opus only: this listener's own encoder (its state is this stream's), gone with the fork. */
  readonly #opus: OpusFrameEncoder | null;
  /** Mixed and stereo: the caller's frames placed beside the service's by when they were heard. */
  readonly #pairer: FramePairer | null;
  /** The caller's clock as last seen (a service-only fork follows its jumps). */
  #lastCallerTs: number | null = null;
  readonly #onReadable: () => void;
  readonly #onDropped: () => void;
  readonly #onClosed: (reason: CloseReason) => void;
  #sequence = 0;
  readonly #readers = new Set<ForkReader>();
  #rtpTs = 0;
  #pendingTs: number | null = null;
  #pendingConcealed = false;
  #pendingAt = 0;
  dropped = 0;

  constructor(opts: { format: ForkFormat; maxQueueFrames: number; onReadable: () => void; onDropped?: () => void; onCallClosed: (reason: CloseReason) => void }) {
    this.format = opts.format;
    this.#maxQueue = opts.maxQueueFrames;
    this.#framer = new Framer(((opts.format.sampleRate * opts.format.frameMs) / 1000) * opts.format.channels);
    const resample = opts.format.sampleRate !== CALL_RATE;
    // Delayed: a frame leaves with the packet that completes it, its audio 2.25 ms late,
    // instead of waiting 20 ms for the next packet to bring the kernel's last few samples.
    this.#resamplers = resample ? Array.from({ length: opts.format.channels }, () => new Resampler(CALL_RATE, opts.format.sampleRate, { delayed: true })) : [];
    this.#lag = this.#resamplers[0]?.lag ?? 0;
    this.#converted = this.#resamplers.map((r) => new Int16Array(r.maxOutputLength(CALL_FRAME)));
    // gRPC is reliable: no in-band FEC (it would take bits from the audio for losses that never come).
    this.#opus =
      opts.format.encoding === 'opus'
        ? new OpusFrameEncoder({ sampleRate: opts.format.sampleRate, channels: opts.format.channels === 2 ? 2 : 1, bitrate: (opts.format.sampleRate <= 8000 ? 20000 : 32000) * opts.format.channels, fec: false })
        : null;
    const both = opts.format.source === 'mixed' || opts.format.source === 'stereo';
    this.#pairer = both ? new FramePairer({ delayFrames: PAIRING_DELAY_FRAMES, maxQueue: INBOUND_CUSHION }) : null;
    this.#onReadable = opts.onReadable;
    this.#onDropped = opts.onDropped ?? (() => {});
    this.#onClosed = opts.onCallClosed;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** The next frame for the listener, oldest first. */
  shift(): ForkFrame | undefined {
    return this.#queue.shift();
  }

  /** Another listener of the same format: it shares this fork's conversion (resampling, encoding). */
  join(opts: ForkReaderOptions): ForkReader {
    const r = new ForkReader(opts);
    this.#readers.add(r);
    return r;
  }

  /** A listener left; returns how many are still reading. */
  leave(r: ForkReader): number {
    this.#readers.delete(r);
    return this.#readers.size;
  }

  inbound(frame: TimelineFrame): void {
    if (this.format.source === 'caller') {
      this.#produce([frame.samples], frame.timestamp, frame.concealed);
      return;
    }
    if (this.#pairer) this.#pairer.caller(frame.samples, frame.timestamp, frame.concealed);
    else this.#lastCallerTs = frame.timestamp;
  }

  outbound(frame: Int16Array | null): void {
    const src = this.format.source;
    if (src === 'caller') return;
    if (!this.#pairer) {
      this.#produce([frame ?? SILENCE], this.#nextTs(this.#lastCallerTs), frame === null);
      this.#lastCallerTs = null;
      return;
    }
    const pair = this.#pairer.tick(frame);
    if (pair) this.#producePair(pair.caller, pair.service);
  }

  #producePair(caller: PairedCaller | null, serviceFrame: Int16Array | null): void {
    const service = serviceFrame ?? SILENCE;
    const ts = this.#nextTs(caller?.timestamp ?? null);
    if (this.format.source === 'stereo') {
      this.#produce([caller?.samples ?? SILENCE, service], ts, !caller || caller.concealed);
    } else {
      const a = caller?.samples ?? SILENCE;
      const mixed = this.#mixed;
      for (let i = 0; i < CALL_FRAME; i++) {
        const v = a[i]! + service[i]!;
        mixed[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
      }
      this.#produce([mixed], ts, !caller || caller.concealed);
    }
  }

  /**
   * A continuous clock on the service's ticks. It takes the caller's RTP clock when that
   * starts or jumps (a new SSRC), not for small differences (packets slipping against the
   * tick, the reorder window, concealment catching up).
   */
  #nextTs(callerTs: number | null): number {
    const next = (this.#rtpTs + CALL_FRAME) >>> 0;
    return callerTs !== null && Math.abs(tsDelta(callerTs, next)) > INBOUND_CUSHION * CALL_FRAME ? callerTs : next;
  }

  callClosed(reason: CloseReason): void {
    // The slots the pairing still holds are the call's last 80 ms: the listener gets them too.
    if (this.#pairer) for (const pair of this.#pairer.drain()) this.#producePair(pair.caller, pair.service);
    this.#onClosed(reason);
    for (const r of [...this.#readers]) r.closed(reason);
  }

  #produce(channels: Int16Array[], rtpTs: number, concealed: boolean): void {
    if (this.#pendingTs !== null && rtpTs !== ((this.#rtpTs + CALL_FRAME) >>> 0)) {
      // The caller's clock jumped (a new SSRC, or the caller began under the service's audio):
      // what the framer holds is re-labelled so the frames follow the new clock.
      const held = this.#framer.buffered / this.format.channels;
      this.#pendingTs = (rtpTs - this.#lag - Math.round((held * CALL_RATE) / this.format.sampleRate)) >>> 0;
    }
    this.#rtpTs = rtpTs;
    const conv = this.#resamplers.length ? channels.map((c, i) => this.#resamplers[i]!.process(c, c.length <= CALL_FRAME ? this.#converted[i] : undefined)) : channels;
    let samples: Int16Array;
    if (conv.length === 1) samples = conv[0]!;
    else {
      const n = Math.min(conv[0]!.length, conv[1]!.length);
      if (this.#interleaved.length < n * 2) this.#interleaved = new Int16Array(n * 2);
      samples = this.#interleaved.subarray(0, n * 2);
      for (let i = 0; i < n; i++) {
        samples[2 * i] = conv[0]![i]!;
        samples[2 * i + 1] = conv[1]![i]!;
      }
    }
    this.#pendingTs ??= (rtpTs - this.#lag) >>> 0;
    // A frame is complete when its last audio arrives: latency is counted from then.
    this.#pendingAt = performance.now();
    this.#pendingConcealed ||= concealed;
    this.#framer.push(samples, (frame) => this.#emit(frame));
  }

  #emit(frame: Int16Array): void {
    const f = this.format;
    const data =
      f.encoding === 'pcm'
        ? Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength)
        : this.#opus
          ? this.#opus.encode(frame)
          : Buffer.from(encodeG711(f.encoding === 'pcmu' ? 'PCMU' : 'PCMA', frame));
    const out: ForkFrame = {
      data,
      rtpTimestamp: this.#pendingTs ?? this.#rtpTs,
      sequence: this.#sequence++,
      concealed: this.#pendingConcealed,
      capturedAtMs: this.#pendingAt,
      encoded: undefined,
    };
    // The next frame starts where this one ended on the caller's 8 kHz clock (frames need not
    // line up with the 20 ms input: a resampler's output or 10 ms frames straddle them).
    this.#pendingTs = (out.rtpTimestamp + (f.frameMs * CALL_RATE) / 1000) >>> 0;
    this.#pendingConcealed = false;
    for (const r of this.#readers) r.offer(out);
    // A shared fork has no listener of its own (maxQueueFrames 0): only its readers.
    if (this.#maxQueue === 0) return;
    if (this.#queue.length >= this.#maxQueue) {
      this.#queue.shift();
      this.dropped++;
      // Counted now: a listener that never reads again would otherwise never be counted.
      this.#onDropped();
    }
    this.#queue.push(out);
    this.#onReadable();
  }
}
