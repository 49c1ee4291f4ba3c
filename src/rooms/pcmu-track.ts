import { randomInt } from 'node:crypto';
import type { types as ms } from 'mediasoup';
import { encodeG711 } from '../codecs/g711.ts';
import { AUDIO_LEVEL_URI, audioLevel } from './opus-send-leg.ts';

const AUDIO_LEVEL_EXT_ID = 1;
const PCMU_PT = 0;
const FRAME = 160;

/**
 * One phone's voice into a router as it is, G.711 (every browser decodes PCMU): 20 ms of
 * 8 kHz PCM in, one RTP packet out on a DirectTransport producer with a stable SSRC and
 * the audio level extension, so browsers get the phone as its own track and the room's
 * level observer hears it. No encoder runs: G.711 is a table lookup.
 */
export class PcmuTrack {
  readonly producer: ms.Producer;
  readonly #ssrc: number;
  readonly #payload = new Uint8Array(FRAME);
  #seq = randomInt(0, 0x10000);
  #ts = randomInt(0, 0xffffffff);
  #marker = true;

  static async create(transport: ms.DirectTransport, appData: Record<string, unknown>): Promise<PcmuTrack> {
    const ssrc = randomInt(1, 0xffffffff);
    const producer = await transport.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: [{ mimeType: 'audio/PCMU', payloadType: PCMU_PT, clockRate: 8000 }],
        headerExtensions: [{ uri: AUDIO_LEVEL_URI, id: AUDIO_LEVEL_EXT_ID }],
        encodings: [{ ssrc }],
      },
      appData,
    });
    return new PcmuTrack(producer, ssrc);
  }

  private constructor(producer: ms.Producer, ssrc: number) {
    this.producer = producer;
    this.#ssrc = ssrc;
  }

  /** One 20 ms frame; null: nothing this tick (the next packet carries the marker bit). */
  send(pcm: Int16Array | null): void {
    if (this.producer.closed) return;
    if (!pcm) {
      this.#ts = (this.#ts + FRAME) >>> 0;
      this.#marker = true;
      return;
    }
    const packet = Buffer.allocUnsafe(20 + FRAME);
    packet[0] = 0x90;
    packet[1] = (this.#marker ? 0x80 : 0) | PCMU_PT;
    packet.writeUInt16BE(this.#seq, 2);
    packet.writeUInt32BE(this.#ts, 4);
    packet.writeUInt32BE(this.#ssrc, 8);
    packet.writeUInt16BE(0xbede, 12);
    packet.writeUInt16BE(1, 14);
    packet[16] = AUDIO_LEVEL_EXT_ID << 4;
    const level = audioLevel(pcm);
    packet[17] = (level < 70 ? 0x80 : 0) | level;
    packet[18] = 0;
    packet[19] = 0;
    packet.set(encodeG711('PCMU', pcm, this.#payload), 20);
    this.producer.send(packet);
    this.#seq = (this.#seq + 1) & 0xffff;
    this.#ts = (this.#ts + FRAME) >>> 0;
    this.#marker = false;
  }

  close(): void {
    this.producer.close();
  }
}
