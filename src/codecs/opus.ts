import { createRequire } from 'node:module';
import { MediaError } from '../errors/media-error.ts';

/**
 * Opus (RFC 6716) through libopus, 20 ms frames, called synchronously on the media clock.
 *
 * The native binding is used directly rather than through a stream wrapper: each frame is
 * one call with no queue in between, which keeps the added latency at zero and costs no
 * allocation beyond the packet itself. Whatever the codec's internal rate, Opus RTP always
 * runs a 48 kHz clock (RFC 7587), so a 20 ms frame advances the timestamp by 960.
 */

export const OPUS_RTP_CLOCK = 48000;
export const OPUS_FRAME_MS = 20;
export const OPUS_DEFAULT_PAYLOAD_TYPE = 111;
export const OPUS_RATES = [8000, 12000, 16000, 24000, 48000] as const;
export type OpusRate = (typeof OPUS_RATES)[number];

interface NativeOpus {
  encode(buf: Buffer): Buffer;
  decode(buf: Buffer): Buffer;
  applyEncoderCTL(ctl: number, value: number): void;
  applyDecoderCTL(ctl: number, value: number): void;
  setBitrate(bitrate: number): void;
}

type NativeCtor = new (rate: number, channels: number) => NativeOpus;

// libopus request numbers (opus_defines.h).
const CTL = {
  setApplication: 4000,
  setBitrate: 4002,
  setComplexity: 4010,
  setInbandFec: 4012,
  setPacketLossPerc: 4014,
  setDtx: 4016,
  setSignal: 4024,
} as const;
const APPLICATION_VOIP = 2048;
const SIGNAL_VOICE = 3001;

let native: NativeCtor | undefined;

function loadNative(): NativeCtor {
  if (native) return native;
  try {
    const mod = createRequire(import.meta.url)('@discordjs/opus') as { OpusEncoder: NativeCtor };
    native = mod.OpusEncoder;
    return native;
  } catch (error) {
    throw new MediaError('internal', `the Opus codec is not available (run scripts/setup.sh): ${(error as Error).message}`);
  }
}

function checkRate(rate: number): asserts rate is OpusRate {
  if (!(OPUS_RATES as readonly number[]).includes(rate)) throw new MediaError('invalid_argument', `Opus sample rate must be one of ${OPUS_RATES.join(', ')}, got ${rate}`);
}

export interface OpusEncoderOptions {
  /** Rate of the PCM handed in; 8000 for a G.711 source (libopus then codes narrowband). */
  sampleRate: number;
  channels?: 1 | 2;
  bitrate?: number;
  /** 0-10; speech from the telephone network loses nothing audible below 5, and costs half. */
  complexity?: number;
  /** In-band forward error correction: the far end can rebuild one lost frame. */
  fec?: boolean;
}

export class OpusFrameEncoder {
  readonly sampleRate: OpusRate;
  readonly channels: 1 | 2;
  /** Samples per channel in one 20 ms frame at `sampleRate`. */
  readonly frameSamples: number;
  readonly #codec: NativeOpus;

  constructor(opts: OpusEncoderOptions) {
    checkRate(opts.sampleRate);
    this.sampleRate = opts.sampleRate;
    this.channels = opts.channels ?? 1;
    this.frameSamples = (this.sampleRate * OPUS_FRAME_MS) / 1000;
    const Native = loadNative();
    this.#codec = new Native(this.sampleRate, this.channels);
    this.#codec.applyEncoderCTL(CTL.setApplication, APPLICATION_VOIP);
    this.#codec.applyEncoderCTL(CTL.setSignal, SIGNAL_VOICE);
    this.#codec.applyEncoderCTL(CTL.setComplexity, opts.complexity ?? 5);
    this.#codec.setBitrate(opts.bitrate ?? (this.sampleRate <= 8000 ? 20000 : 32000));
    if (opts.fec ?? true) {
      this.#codec.applyEncoderCTL(CTL.setInbandFec, 1);
      this.#codec.applyEncoderCTL(CTL.setPacketLossPerc, 5);
    }
  }

  /** One 20 ms frame of interleaved PCM in, one Opus packet out. */
  encode(pcm: Int16Array): Buffer {
    if (pcm.length !== this.frameSamples * this.channels) {
      throw new MediaError('invalid_argument', `an Opus frame is ${this.frameSamples * this.channels} samples, got ${pcm.length}`);
    }
    return this.#codec.encode(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  }
}

export class OpusFrameDecoder {
  readonly sampleRate: OpusRate;
  readonly channels: 1 | 2;
  readonly frameSamples: number;
  readonly #codec: NativeOpus;
  static readonly #empty = Buffer.alloc(0);

  /** `sampleRate` is the rate wanted out; libopus resamples internally whatever was sent. */
  constructor(opts: { sampleRate: number; channels?: 1 | 2 }) {
    checkRate(opts.sampleRate);
    this.sampleRate = opts.sampleRate;
    this.channels = opts.channels ?? 1;
    this.frameSamples = (this.sampleRate * OPUS_FRAME_MS) / 1000;
    this.#codec = new (loadNative())(this.sampleRate, this.channels);
  }

  /**
   * Decodes one packet; `null` conceals a lost one (libopus packet-loss concealment).
   * Throws MediaError('invalid_argument') on a corrupt packet.
   */
  decode(payload: Uint8Array | null): Int16Array {
    let out: Buffer;
    try {
      out = this.#codec.decode(payload ? Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength) : OpusFrameDecoder.#empty);
    } catch (error) {
      throw new MediaError('invalid_argument', `corrupt Opus packet: ${(error as Error).message}`);
    }
    // The binding asks libopus for its largest frame (120 ms): concealment fills all of it.
    // One frame is what was lost; the rest is dropped.
    if (!payload && out.byteLength > this.frameSamples * this.channels * 2) out = out.subarray(0, this.frameSamples * this.channels * 2);
    if (out.byteOffset % 2 === 0) return new Int16Array(out.buffer, out.byteOffset, out.byteLength >> 1);
    const copy = new Int16Array(out.byteLength >> 1);
    for (let i = 0; i < copy.length; i++) copy[i] = out.readInt16LE(i * 2);
    return copy;
  }
}
