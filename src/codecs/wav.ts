import { MediaError } from '../errors/media-error.ts';
import { aLawDecodeSample, muLawDecodeSample } from './g711.ts';

/** 16-bit PCM; `samples` holds `channels` interleaved channels. */
export interface PcmAudio {
  sampleRate: number;
  channels: number;
  samples: Int16Array;
}

/** What the header of a RIFF/WAVE file says, before any sample is decoded. */
export interface WavInfo {
  /** The format tag, or the subformat's tag for WAVE_FORMAT_EXTENSIBLE. */
  formatTag: number;
  sampleRate: number;
  channels: number;
  /** Bits of the sample container (valid bits may be fewer, left-justified). */
  bitsPerSample: number;
  dataOffset: number;
  /** Bytes of sample data in the file, after reading "to the end" sizes. */
  dataLength: number;
}

const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_ALAW = 6;
const FORMAT_MULAW = 7;
const FORMAT_EXTENSIBLE = 0xfffe;
export const MAX_WAV_CHANNELS = 8;

/** Names for the formats people most often send by mistake, so the error says what the file is. */
const FORMAT_NAMES: Readonly<Record<number, string>> = {
  0x0002: 'Microsoft ADPCM',
  0x0011: 'IMA ADPCM',
  0x0031: 'GSM 6.10',
  0x0040: 'G.721 ADPCM',
  0x0045: 'G.726 ADPCM',
  0x0050: 'MPEG audio',
  0x0055: 'MP3-in-WAV',
  0x0064: 'G.726 ADPCM',
  0x00ff: 'AAC',
  0x1610: 'AAC',
  0x2000: 'AC-3',
};

/** Bytes 4..15 of every KSDATAFORMAT_SUBTYPE GUID that just wraps a classic format tag. */
const SUBFORMAT_SUFFIX = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

const invalid = (message: string): MediaError => new MediaError('invalid_argument', message);

function fourCC(buf: Uint8Array, offset: number): string {
  return String.fromCharCode(buf[offset]!, buf[offset + 1]!, buf[offset + 2]!, buf[offset + 3]!);
}

interface FmtChunk {
  formatTag: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
}

function readFmt(view: DataView, offset: number, size: number): FmtChunk {
  if (size < 16) throw invalid(`WAV fmt chunk is ${size} bytes, at least 16 are needed`);
  let formatTag = view.getUint16(offset, true);
  const channels = view.getUint16(offset + 2, true);
  const sampleRate = view.getUint32(offset + 4, true);
  const bitsPerSample = view.getUint16(offset + 14, true);
  if (formatTag === FORMAT_EXTENSIBLE) {
    if (size < 40) throw invalid('WAV extensible fmt chunk is too short');
    const guid = new Uint8Array(view.buffer, view.byteOffset + offset + 24, 16);
    if (!SUBFORMAT_SUFFIX.every((b, i) => guid[i + 2] === b)) {
      throw invalid('WAV extensible subformat is not a PCM, float, A-law or mu-law GUID and is not supported');
    }
    formatTag = view.getUint16(offset + 24, true);
  }
  if (channels < 1 || channels > MAX_WAV_CHANNELS) {
    throw invalid(`WAV with ${channels} channels is not supported (1 to ${MAX_WAV_CHANNELS})`);
  }
  if (sampleRate === 0) throw invalid('WAV sample rate is 0');
  return { formatTag, channels, sampleRate, bitsPerSample };
}

/** Reads the RIFF structure; throws only when the file is not WAV or is broken. */
export function readWavInfo(buf: Uint8Array): WavInfo {
  if (buf.length < 12) throw invalid('not a WAV file: too short');
  const magic = fourCC(buf, 0);
  if (magic === 'RIFX') throw invalid('big-endian WAV (RIFX) is not supported');
  if ((magic !== 'RIFF' && magic !== 'RF64') || fourCC(buf, 8) !== 'WAVE') {
    throw invalid('not a WAV file: no RIFF/WAVE header');
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let fmt: FmtChunk | undefined;
  let dataOffset = -1;
  let dataLength = 0;
  let ds64DataSize = -1;
  let offset = 12;
  while (offset + 8 <= buf.length) {
    const id = fourCC(buf, offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    const available = buf.length - body;
    if (id === 'data') {
      dataOffset = body;
      if (size === 0xffffffff && ds64DataSize >= 0 && ds64DataSize <= available) {
        dataLength = ds64DataSize;
      } else if (size === 0 || size === 0xffffffff || size > available) {
        // a writer that streamed or crashed never came back to fill in the size
        dataLength = available;
        break;
      } else {
        dataLength = size;
      }
      if (fmt) break;
    } else if (size > available) {
      if (fmt && dataOffset >= 0) break;
      throw invalid(`WAV file is truncated inside its '${id.replace(/[^\x20-\x7e]/g, '?')}' chunk`);
    } else if (id === 'fmt ') {
      fmt = readFmt(view, body, size);
    } else if (id === 'ds64' && size >= 16) {
      ds64DataSize = view.getUint32(body + 8, true) + view.getUint32(body + 12, true) * 2 ** 32;
    }
    // chunks are word-aligned: an odd-sized body is followed by a pad byte
    const consumed = id === 'data' ? dataLength : size;
    offset = body + consumed + (consumed & 1);
  }
  if (!fmt) throw invalid('WAV file has no fmt chunk');
  if (dataOffset < 0) throw invalid('WAV file has no data chunk');
  return { ...fmt, dataOffset, dataLength };
}

/** Why the samples cannot be decoded here, or null when they can. */
function unsupportedReason(info: WavInfo): string | null {
  const { formatTag: tag, bitsPerSample: bits } = info;
  if (tag === FORMAT_PCM) return bits >= 1 && bits <= 32 ? null : `WAV PCM with ${bits} bits per sample is not supported`;
  if (tag === FORMAT_FLOAT) return bits === 32 || bits === 64 ? null : `WAV float with ${bits} bits per sample is not supported`;
  if (tag === FORMAT_ALAW || tag === FORMAT_MULAW) {
    return bits === 8 ? null : `WAV G.711 with ${bits} bits per sample is not supported`;
  }
  const name = FORMAT_NAMES[tag];
  return `WAV format ${tag}${name ? ` (${name})` : ''} is not supported`;
}

export function isSupportedWav(info: WavInfo): boolean {
  return unsupportedReason(info) === null;
}

/** Bytes per sample of the container; PCM rounds odd bit depths up to whole bytes. */
function containerBytes(info: WavInfo): number {
  return Math.ceil(info.bitsPerSample / 8);
}

/** Decodes a whole WAV file to 16-bit PCM (wider samples are rounded, floats saturate). */
export function parseWav(buf: Uint8Array): PcmAudio {
  const info = readWavInfo(buf);
  const reason = unsupportedReason(info);
  if (reason) throw invalid(reason);
  const width = containerBytes(info);
  const count = Math.floor(info.dataLength / (width * info.channels)) * info.channels;
  const samples = new Int16Array(count);
  const view = new DataView(buf.buffer, buf.byteOffset + info.dataOffset, count * width);
  const tag = info.formatTag;
  if (tag === FORMAT_ALAW || tag === FORMAT_MULAW) {
    const decode = tag === FORMAT_ALAW ? aLawDecodeSample : muLawDecodeSample;
    for (let i = 0; i < count; i++) samples[i] = decode(view.getUint8(i));
  } else if (tag === FORMAT_FLOAT) {
    for (let i = 0; i < count; i++) {
      samples[i] = floatToInt16(width === 4 ? view.getFloat32(i * 4, true) : view.getFloat64(i * 8, true));
    }
  } else if (width === 1) {
    for (let i = 0; i < count; i++) samples[i] = (view.getUint8(i) - 128) << 8;
  } else if (width === 2) {
    for (let i = 0; i < count; i++) samples[i] = view.getInt16(i * 2, true);
  } else if (width === 3) {
    for (let i = 0; i < count; i++) {
      const o = i * 3;
      const v = ((view.getUint8(o) | (view.getUint8(o + 1) << 8) | (view.getUint8(o + 2) << 16)) << 8) >> 8;
      samples[i] = roundShift(v, 8);
    }
  } else {
    for (let i = 0; i < count; i++) samples[i] = roundShift(view.getInt32(i * 4, true), 16);
  }
  return { sampleRate: info.sampleRate, channels: info.channels, samples };
}

/** Drops `bits` low bits rounding half up, without leaving int32 arithmetic. */
function roundShift(v: number, bits: number): number {
  const r = (v >> bits) + ((v >> (bits - 1)) & 1);
  return r > 32767 ? 32767 : r;
}

function floatToInt16(x: number): number {
  const v = Math.round(x * 32768);
  if (v > 32767) return 32767;
  if (v < -32768) return -32768;
  return v || 0; // NaN and -0 become 0
}

/**
 * Averages the channels of each frame. Mono input comes back as `audio.samples` itself
 * unless `out` is given.
 */
export function toMono(audio: PcmAudio, out?: Int16Array): Int16Array {
  const { channels, samples } = audio;
  if (!Number.isInteger(channels) || channels < 1) throw invalid(`channel count must be a positive integer, got ${channels}`);
  const frames = Math.floor(samples.length / channels);
  if (out && out.length < frames) throw invalid(`mono output buffer holds ${out.length} samples, ${frames} are needed`);
  if (channels === 1) {
    if (!out) return samples;
    out.set(samples);
    return out.subarray(0, frames);
  }
  const dst = out ?? new Int16Array(frames);
  for (let f = 0, i = 0; f < frames; f++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += samples[i++]!;
    dst[f] = Math.round(sum / channels);
  }
  return dst.length === frames ? dst : dst.subarray(0, frames);
}

const HEADER_BYTES = 44;

/** The canonical 44-byte header of a 16-bit PCM WAV file with `dataBytes` of samples. */
export function wavHeader(opts: { sampleRate: number; channels: number; dataBytes: number }): Buffer {
  const { sampleRate, channels, dataBytes } = opts;
  if (!Number.isInteger(sampleRate) || sampleRate < 1 || sampleRate > 0xffffffff) {
    throw invalid(`WAV sample rate must be a positive integer, got ${sampleRate}`);
  }
  if (!Number.isInteger(channels) || channels < 1 || channels > MAX_WAV_CHANNELS) {
    throw invalid(`WAV channel count must be 1 to ${MAX_WAV_CHANNELS}, got ${channels}`);
  }
  if (!Number.isInteger(dataBytes) || dataBytes < 0 || dataBytes % 2 !== 0 || dataBytes > 0xffffffff - (HEADER_BYTES - 8)) {
    throw invalid(`WAV data size must be an even byte count below 4 GiB, got ${dataBytes}`);
  }
  const h = Buffer.alloc(HEADER_BYTES);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(HEADER_BYTES - 8 + dataBytes, 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(FORMAT_PCM, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * channels * 2, 28);
  h.writeUInt16LE(channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A complete 16-bit PCM WAV file of interleaved `samples`. */
export function encodeWav(samples: Int16Array, sampleRate: number, channels: number): Buffer {
  if (Number.isInteger(channels) && channels > 0 && samples.length % channels !== 0) {
    throw invalid(`${samples.length} samples do not make whole frames of ${channels} channels`);
  }
  const header = wavHeader({ sampleRate, channels, dataBytes: samples.length * 2 });
  const file = Buffer.alloc(HEADER_BYTES + samples.length * 2);
  header.copy(file, 0);
  if (LITTLE_ENDIAN) {
    file.set(new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength), HEADER_BYTES);
  } else {
    for (let i = 0; i < samples.length; i++) file.writeInt16LE(samples[i]!, HEADER_BYTES + i * 2);
  }
  return file;
}
