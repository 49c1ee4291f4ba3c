/** Little-endian 16-bit PCM from chunks of any size; an odd byte waits for the next chunk. */
export class PcmAssembler {
  #carry: number | null = null;

  push(chunk: Uint8Array): Int16Array {
    const bytes = this.#carry === null ? chunk : Buffer.concat([Buffer.from([this.#carry]), chunk]);
    const n = bytes.length >> 1;
    this.#carry = bytes.length % 2 ? bytes[bytes.length - 1]! : null;
    const out = new Int16Array(n);
    for (let i = 0; i < n; i++) out[i] = (bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16 >> 16;
    return out;
  }
}
