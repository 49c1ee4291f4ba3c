import { MediaError } from '../errors/media-error.ts';

/**
 * ITU-T G.711 mu-law (PCMU) and A-law (PCMA) on 16-bit linear PCM.
 *
 * The quantisers follow the ITU-T G.191 reference: a negative sample x is coded from the
 * magnitude ~x (= -x - 1), so the decision levels are symmetric about -0.5 and x and -1 - x
 * always get mirror codes. Everything goes through tables built on first use, because one
 * table lookup per sample is far cheaper than the segment search on every RTP packet.
 */

export type G711Codec = 'PCMU' | 'PCMA';

/** Static RTP payload types (RFC 3551). */
export const G711_PAYLOAD_TYPE: Readonly<Record<G711Codec, number>> = Object.freeze({ PCMU: 0, PCMA: 8 });

/** The code of linear zero, used to fill gaps and comfort silence. */
export const G711_SILENCE: Readonly<Record<G711Codec, number>> = Object.freeze({ PCMU: 0xff, PCMA: 0xd5 });

const MU_BIAS = 0x84;

function muLawEncodeDirect(x: number): number {
  const negative = x < 0;
  // 14-bit magnitude with the G.711 bias of 33 added, so every segment starts at a power of two
  let mag = ((negative ? ~x : x) >> 2) + 33;
  if (mag > 0x1fff) mag = 0x1fff;
  let seg = 0;
  for (let v = mag >> 6; v !== 0; v >>= 1) seg++;
  const code = ((seg << 4) | ((mag >> (seg + 1)) & 0x0f)) ^ 0x7f;
  return negative ? code : code | 0x80;
}

function muLawDecodeDirect(code: number): number {
  const c = ~code & 0xff;
  const seg = (c >> 4) & 0x07;
  const mag = ((((c & 0x0f) << 3) + MU_BIAS) << seg) - MU_BIAS;
  return c & 0x80 ? -mag : mag;
}

function aLawEncodeDirect(x: number): number {
  const negative = x < 0;
  let ix = (negative ? ~x : x) >> 4;
  if (ix > 15) {
    let seg = 1;
    while (ix > 31) {
      ix >>= 1;
      seg++;
    }
    ix = ix - 16 + (seg << 4);
  }
  if (!negative) ix |= 0x80;
  // even bits are inverted so that idle lines carry enough transitions for clock recovery
  return ix ^ 0x55;
}

function aLawDecodeDirect(code: number): number {
  const ix = (code ^ 0x55) & 0x7f;
  const seg = ix >> 4;
  let mag = ix & 0x0f;
  if (seg > 0) mag += 16;
  mag = (mag << 4) + 8;
  if (seg > 1) mag <<= seg - 1;
  return code & 0x80 ? mag : -mag;
}

let muEncodeTable: Uint8Array | undefined;
let aEncodeTable: Uint8Array | undefined;
let muDecodeTable: Int16Array | undefined;
let aDecodeTable: Int16Array | undefined;

function buildEncodeTable(encode: (x: number) => number): Uint8Array {
  const table = new Uint8Array(65536);
  for (let i = 0; i < 65536; i++) table[i] = encode((i << 16) >> 16);
  return table;
}

function buildDecodeTable(decode: (code: number) => number): Int16Array {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) table[code] = decode(code);
  return table;
}

function encodeTable(codec: G711Codec): Uint8Array {
  if (codec === 'PCMU') return (muEncodeTable ??= buildEncodeTable(muLawEncodeDirect));
  if (codec === 'PCMA') return (aEncodeTable ??= buildEncodeTable(aLawEncodeDirect));
  throw unknownCodec(codec);
}

function decodeTable(codec: G711Codec): Int16Array {
  if (codec === 'PCMU') return (muDecodeTable ??= buildDecodeTable(muLawDecodeDirect));
  if (codec === 'PCMA') return (aDecodeTable ??= buildDecodeTable(aLawDecodeDirect));
  throw unknownCodec(codec);
}

function unknownCodec(codec: unknown): MediaError {
  return new MediaError('invalid_argument', `unknown G.711 codec ${JSON.stringify(String(codec))} (expected PCMU or PCMA)`);
}

/** Encodes 16-bit samples; writes into `out` (at least pcm.length long) when given. */
export function encodeG711(codec: G711Codec, pcm: Int16Array, out?: Uint8Array): Uint8Array {
  const table = encodeTable(codec);
  const n = pcm.length;
  const dst = out ?? new Uint8Array(n);
  if (dst.length < n) {
    throw new MediaError('invalid_argument', `G.711 output buffer holds ${dst.length} bytes, ${n} are needed`);
  }
  for (let i = 0; i < n; i++) dst[i] = table[pcm[i]! & 0xffff]!;
  return dst.length === n ? dst : dst.subarray(0, n);
}

/** Decodes G.711 bytes; writes into `out` (at least data.length long) when given. */
export function decodeG711(codec: G711Codec, data: Uint8Array, out?: Int16Array): Int16Array {
  const table = decodeTable(codec);
  const n = data.length;
  const dst = out ?? new Int16Array(n);
  if (dst.length < n) {
    throw new MediaError('invalid_argument', `G.711 output buffer holds ${dst.length} samples, ${n} are needed`);
  }
  for (let i = 0; i < n; i++) dst[i] = table[data[i]!]!;
  return dst.length === n ? dst : dst.subarray(0, n);
}

/** `sample` is taken modulo 2^16 as a signed 16-bit value. */
export function muLawEncodeSample(sample: number): number {
  return encodeTable('PCMU')[sample & 0xffff]!;
}

export function muLawDecodeSample(code: number): number {
  return decodeTable('PCMU')[code & 0xff]!;
}

/** `sample` is taken modulo 2^16 as a signed 16-bit value. */
export function aLawEncodeSample(sample: number): number {
  return encodeTable('PCMA')[sample & 0xffff]!;
}

export function aLawDecodeSample(code: number): number {
  return decodeTable('PCMA')[code & 0xff]!;
}
