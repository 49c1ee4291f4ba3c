import { endianness } from 'node:os';

/** Int16Array views read the host's byte order: where it is little-endian, aligned bytes are copied whole. */
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** Little-endian 16-bit PCM from chunks of any size; an odd byte waits for the next chunk. */
export class PcmAssembler {
  #carry: number | null = null;

  /** A fresh array the caller owns (never a view of `chunk`). */
  push(chunk: Uint8Array): Int16Array {
    const bytes = this.#carry === null ? chunk : Buffer.concat([Buffer.from([this.#carry]), chunk]);
    const n = bytes.length >> 1;
    this.#carry = bytes.length % 2 ? bytes[bytes.length - 1]! : null;
    if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 2 === 0) {
      // One copy instead of a loop over every sample (a 100 ms TTS chunk is 1,600 of them).
      return new Int16Array(bytes.buffer, bytes.byteOffset, n).slice();
    }
    const out = new Int16Array(n);
    for (let i = 0; i < n; i++) out[i] = (bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16 >> 16;
    return out;
  }
}
