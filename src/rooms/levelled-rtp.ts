import { randomInt } from 'node:crypto';

/** RFC 6464 client-to-mixer audio level, so the router's level observer hears server legs too. */
export const AUDIO_LEVEL_URI = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';
export const AUDIO_LEVEL_EXT_ID = 1;
/** A frame this loud or louder (in -dBov) carries the voice activity bit: the level is all we know. */
const VOICE_LEVEL = 70;
/** The fixed header, then a one-byte extension header (RFC 8285) with one element padded to a word. */
const HEADER_BYTES = 20;

/** -dBov of a frame, 0 (full scale) to 127 (silence), as RFC 6464 carries it. */
export function audioLevel(pcm: Int16Array): number {
  let sum = 0;
  for (let i = 0; i < pcm.length; i++) sum += pcm[i]! * pcm[i]!;
  const rms = Math.sqrt(sum / Math.max(1, pcm.length)) / 32768;
  if (rms <= 0) return 127;
  return Math.min(127, Math.max(0, Math.round(-20 * Math.log10(rms))));
}

/** The header extensions a producer of these packets declares (a new list: mediasoup keeps what it is given). */
export function levelExtensions(): { uri: typeof AUDIO_LEVEL_URI; id: number }[] {
  return [{ uri: AUDIO_LEVEL_URI, id: AUDIO_LEVEL_EXT_ID }];
}

/**
 * The RTP packets of a server-side voice into a router, as a browser sends them: one SSRC,
 * sequence numbers that count packets, timestamps that run on through silence, the marker
 * bit on the first packet of each talk spurt, and the audio level on every packet.
 */
export class LevelledRtp {
  readonly ssrc = randomInt(1, 0xffffffff);
  readonly #payloadType: number;
  readonly #frameTicks: number;
  #seq = randomInt(0, 0x10000);
  #ts = randomInt(0, 0xffffffff);
  #marker = true;

  constructor(payloadType: number, frameTicks: number) {
    this.#payloadType = payloadType;
    this.#frameTicks = frameTicks;
  }

  /** A frame time with nothing to send: the clock runs on, and the next packet starts a spurt. */
  silent(): void {
    this.#ts = (this.#ts + this.#frameTicks) >>> 0;
    this.#marker = true;
  }

  /** The packet of one frame: `payload`, encoded from `pcm`, whose level it carries. */
  next(payload: Uint8Array, pcm: Int16Array): Buffer {
    const packet = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
    packet[0] = 0x90; // V=2, X=1
    packet[1] = (this.#marker ? 0x80 : 0) | this.#payloadType;
    packet.writeUInt16BE(this.#seq, 2);
    packet.writeUInt32BE(this.#ts, 4);
    packet.writeUInt32BE(this.ssrc, 8);
    packet.writeUInt16BE(0xbede, 12);
    packet.writeUInt16BE(1, 14);
    packet[16] = AUDIO_LEVEL_EXT_ID << 4;
    const level = audioLevel(pcm);
    packet[17] = (level < VOICE_LEVEL ? 0x80 : 0) | level;
    packet[18] = 0;
    packet[19] = 0;
    packet.set(payload, HEADER_BYTES);
    this.#seq = (this.#seq + 1) & 0xffff;
    this.#ts = (this.#ts + this.#frameTicks) >>> 0;
    this.#marker = false;
    return packet;
  }
}
