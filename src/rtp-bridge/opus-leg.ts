import { MediaError } from '../errors/media-error.ts';
import { OPUS_RTP_CLOCK, OpusFrameDecoder, OpusFrameEncoder } from '../codecs/opus.ts';
import { tsDelta } from './rtp-packet.ts';

/** What signalling and configuration say about an Opus leg. */
export interface OpusLegOptions {
  /** Dynamic payload type from the SDP (a=rtpmap:<pt> opus/48000/2). */
  payloadType: number;
  /** Encoder complexity 0-10. */
  complexity: number;
  /** Encoder bitrate, bit/s. */
  bitrate: number;
}

/**
 * Maps a sender's RTP clock onto a slower one whose rate divides it (Opus 48 kHz onto the
 * call's 8 kHz): the same input timestamp always maps to the same output timestamp, per
 * SSRC, across 32-bit wrap. The base moves forward in whole output ticks with the stream, so
 * no distance ever grows beyond one packet's.
 */
export class RtpClockMapper {
  readonly #ratio: number;
  readonly #half: number;
  #ssrc = -1;
  #baseIn = 0;
  #baseOut = 0;

  constructor(inRate: number, outRate: number) {
    if (inRate % outRate !== 0) throw new MediaError('internal', `RTP clock ${inRate} is not a multiple of ${outRate}`);
    this.#ratio = inRate / outRate;
    this.#half = this.#ratio >> 1;
  }

  map(ts: number, ssrc: number): number {
    if (ssrc !== this.#ssrc) {
      this.#ssrc = ssrc;
      this.#baseIn = ts >>> 0;
      this.#baseOut = Math.floor((ts >>> 0) / this.#ratio);
      return this.#baseOut;
    }
    const d = tsDelta(ts, this.#baseIn);
    const out = (this.#baseOut + Math.floor((d + this.#half) / this.#ratio)) >>> 0;
    if (d > 0) {
      const k = Math.floor(d / this.#ratio);
      this.#baseIn = (this.#baseIn + k * this.#ratio) >>> 0;
      this.#baseOut = (this.#baseOut + k) >>> 0;
    }
    return out;
  }
}

/**
 * The Opus side of a phone leg: 20 ms frames of the call's PCM become Opus packets on the
 * 48 kHz RTP clock (RFC 7587), and the phone's packets become PCM at the call's rate on the
 * call's clock. A corrupt packet is counted and dropped, never thrown.
 */
export class OpusLeg {
  readonly payloadType: number;
  /** RTP timestamp advance of one 20 ms frame (960). */
  readonly frameTicks: number;
  /** Packets libopus refused to decode. */
  corrupt = 0;
  readonly #encoder: OpusFrameEncoder;
  readonly #decoder: OpusFrameDecoder;
  readonly #clock: RtpClockMapper;

  constructor(opts: OpusLegOptions & { sampleRate: number }) {
    this.payloadType = opts.payloadType;
    this.#encoder = new OpusFrameEncoder({ sampleRate: opts.sampleRate, complexity: opts.complexity, bitrate: opts.bitrate });
    this.#decoder = new OpusFrameDecoder({ sampleRate: opts.sampleRate });
    this.#clock = new RtpClockMapper(OPUS_RTP_CLOCK, opts.sampleRate);
    this.frameTicks = (OPUS_RTP_CLOCK * this.#encoder.frameSamples) / opts.sampleRate;
  }

  /** One 20 ms frame at the call's rate in, one Opus packet out. */
  encode(frame: Int16Array): Buffer {
    return this.#encoder.encode(frame);
  }

  /** The PCM of one packet (any duration the sender chose), or null when it is corrupt. */
  decode(payload: Uint8Array): Int16Array | null {
    if (payload.length === 0) {
      this.corrupt++;
      return null;
    }
    try {
      return this.#decoder.decode(payload);
    } catch {
      this.corrupt++;
      return null;
    }
  }

  /** The packet's timestamp on the call's clock. */
  timestamp(ts: number, ssrc: number): number {
    return this.#clock.map(ts, ssrc);
  }
}
