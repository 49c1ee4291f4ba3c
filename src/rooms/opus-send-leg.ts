import type { types as ms } from 'mediasoup';
import { OpusFrameEncoder, OPUS_RTP_CLOCK } from '../codecs/opus.ts';
import { LevelledRtp, levelExtensions } from './levelled-rtp.ts';

const OPUS_PT = 100;
const FRAME_TICKS = (OPUS_RTP_CLOCK * 20) / 1000;

/** The Opus encoder of a server-side sender. */
export interface OpusSendSettings {
  complexity: number;
  bitrate: number;
}

/**
 * A server-side audio sender into a router (a test prompt): 20 ms of 8 kHz PCM
 * in, one Opus RTP packet out through a DirectTransport producer. Its packets carry the
 * audio level extension, like a browser's.
 */
export class OpusSendLeg {
  readonly producer: ms.Producer;
  readonly #encoder: OpusFrameEncoder;
  readonly #rtp: LevelledRtp;

  /** A DirectTransport of its own on `router` with the sender on it; the transport is the caller's. */
  static async open(router: ms.Router, opts: { complexity: number; bitrate: number; appData: Record<string, unknown> }): Promise<{ transport: ms.DirectTransport; send: OpusSendLeg }> {
    const transport = await router.createDirectTransport({ maxMessageSize: 1500 });
    try {
      return { transport, send: await OpusSendLeg.create(transport, opts) };
    } catch (error) {
      transport.close();
      throw error;
    }
  }

  static async create(transport: ms.DirectTransport, opts: { complexity: number; bitrate: number; appData: Record<string, unknown> }): Promise<OpusSendLeg> {
    const rtp = new LevelledRtp(OPUS_PT, FRAME_TICKS);
    const producer = await transport.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: [{ mimeType: 'audio/opus', payloadType: OPUS_PT, clockRate: OPUS_RTP_CLOCK, channels: 2, parameters: { useinbandfec: 1 } }],
        headerExtensions: levelExtensions(),
        encodings: [{ ssrc: rtp.ssrc }],
      },
      appData: opts.appData,
    });
    return new OpusSendLeg(producer, rtp, new OpusFrameEncoder({ sampleRate: 8000, complexity: opts.complexity, bitrate: opts.bitrate }));
  }

  private constructor(producer: ms.Producer, rtp: LevelledRtp, encoder: OpusFrameEncoder) {
    this.producer = producer;
    this.#rtp = rtp;
    this.#encoder = encoder;
  }

  /** One 20 ms frame (160 samples at 8 kHz); null: nothing to send, the clock still runs. */
  send(pcm: Int16Array | null): void {
    if (this.producer.closed) return;
    if (pcm) this.producer.send(this.#rtp.next(this.#encoder.encode(pcm), pcm));
    else this.#rtp.silent();
  }

  close(): void {
    this.producer.close();
  }
}
