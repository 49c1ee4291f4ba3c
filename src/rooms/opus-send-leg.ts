import { randomInt } from 'node:crypto';
import type { types as ms } from 'mediasoup';
import { OpusFrameEncoder, OPUS_RTP_CLOCK } from '../codecs/opus.ts';

/** RFC 6464 client-to-mixer audio level, so the router's level observer hears server legs too. */
export const AUDIO_LEVEL_URI = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';
const AUDIO_LEVEL_EXT_ID = 1;
const OPUS_PT = 100;
const FRAME_TICKS = (OPUS_RTP_CLOCK * 20) / 1000;

/** -dBov of a frame, 0 (full scale) to 127 (silence), as RFC 6464 carries it. */
export function audioLevel(pcm: Int16Array): number {
  let sum = 0;
  for (let i = 0; i < pcm.length; i++) sum += pcm[i]! * pcm[i]!;
  const rms = Math.sqrt(sum / Math.max(1, pcm.length)) / 32768;
  if (rms <= 0) return 127;
  return Math.min(127, Math.max(0, Math.round(-20 * Math.log10(rms))));
}

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
  readonly #ssrc: number;
  #seq = randomInt(0, 0x10000);
  #ts = randomInt(0, 0xffffffff);
  #marker = true;

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
    const ssrc = randomInt(1, 0xffffffff);
    const producer = await transport.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: [{ mimeType: 'audio/opus', payloadType: OPUS_PT, clockRate: OPUS_RTP_CLOCK, channels: 2, parameters: { useinbandfec: 1 } }],
        headerExtensions: [{ uri: AUDIO_LEVEL_URI, id: AUDIO_LEVEL_EXT_ID }],
        encodings: [{ ssrc }],
      },
      appData: opts.appData,
    });
    return new OpusSendLeg(producer, ssrc, new OpusFrameEncoder({ sampleRate: 8000, complexity: opts.complexity, bitrate: opts.bitrate }));
  }

  private constructor(producer: ms.Producer, ssrc: number, encoder: OpusFrameEncoder) {
    this.producer = producer;
    this.#ssrc = ssrc;
    this.#encoder = encoder;
  }

  /** One 20 ms frame (160 samples at 8 kHz); null: nothing to send, the clock still runs. */
  send(pcm: Int16Array | null): void {
    if (this.producer.closed) return;
    if (!pcm) {
      this.#ts = (this.#ts + FRAME_TICKS) >>> 0;
      this.#marker = true;
      return;
    }
    const payload = this.#encoder.encode(pcm);
    const packet = Buffer.allocUnsafe(12 + 8 + payload.length);
    packet[0] = 0x90; // V=2, X=1
    packet[1] = (this.#marker ? 0x80 : 0) | OPUS_PT;
    packet.writeUInt16BE(this.#seq, 2);
    packet.writeUInt32BE(this.#ts, 4);
    packet.writeUInt32BE(this.#ssrc, 8);
    // One-byte header extension (RFC 8285): one element, padded to a 32-bit word.
    packet.writeUInt16BE(0xbede, 12);
    packet.writeUInt16BE(1, 14);
    packet[16] = AUDIO_LEVEL_EXT_ID << 4;
    const level = audioLevel(pcm);
    packet[17] = (level < 70 ? 0x80 : 0) | level; // V: voice activity, from the level alone
    packet[18] = 0;
    packet[19] = 0;
    packet.set(payload, 20);
    this.producer.send(packet);
    this.#seq = (this.#seq + 1) & 0xffff;
    this.#ts = (this.#ts + FRAME_TICKS) >>> 0;
    this.#marker = false;
  }

  close(): void {
    this.producer.close();
  }
}
