import type { types as ms } from 'mediasoup';
import { encodeG711 } from '../codecs/g711.ts';
import { LevelledRtp, levelExtensions } from './levelled-rtp.ts';

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
  readonly #rtp: LevelledRtp;
  readonly #payload = new Uint8Array(FRAME);

  static async create(transport: ms.DirectTransport, appData: Record<string, unknown>): Promise<PcmuTrack> {
    const rtp = new LevelledRtp(PCMU_PT, FRAME);
    const producer = await transport.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: [{ mimeType: 'audio/PCMU', payloadType: PCMU_PT, clockRate: 8000 }],
        headerExtensions: levelExtensions(),
        encodings: [{ ssrc: rtp.ssrc }],
      },
      appData,
    });
    return new PcmuTrack(producer, rtp);
  }

  private constructor(producer: ms.Producer, rtp: LevelledRtp) {
    this.producer = producer;
    this.#rtp = rtp;
  }

  /** One 20 ms frame; null: nothing this tick (the next packet carries the marker bit). */
  send(pcm: Int16Array | null): void {
    if (this.producer.closed) return;
    if (pcm) this.producer.send(this.#rtp.next(encodeG711('PCMU', pcm, this.#payload), pcm));
    else this.#rtp.silent();
  }

  close(): void {
    this.producer.close();
  }
}
