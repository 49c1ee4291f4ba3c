import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  G711_PAYLOAD_TYPE,
  G711_SILENCE,
  aLawDecodeSample,
  aLawEncodeSample,
  decodeG711,
  encodeG711,
  muLawDecodeSample,
  muLawEncodeSample,
} from '../../../src/codecs/g711.ts';
import type { G711Codec } from '../../../src/codecs/g711.ts';
import { MediaError } from '../../../src/errors/media-error.ts';
import { fitSine, sine } from './signal.ts';

const isInvalid = (err: unknown): boolean => err instanceof MediaError && err.code === 'invalid_argument';

/** Reconstruction levels straight from the G.711 tables, on the 16-bit scale (x4 for mu-law's 14 bits, x16 for A-law's 12). */
function muLawLevel(code: number): number {
  const c = ~code & 0xff; // mu-law transmits every bit inverted
  const seg = (c >> 4) & 7;
  const m = c & 15;
  const magnitude14 = (2 * m + 33) * 2 ** seg - 33;
  return (c & 0x80 ? -1 : 1) * 4 * magnitude14 + 0; // + 0 turns -0 into 0
}

function aLawLevel(code: number): number {
  const c = code ^ 0x55; // A-law transmits the even bits inverted
  const seg = (c >> 4) & 7;
  const m = c & 15;
  const magnitude12 = seg === 0 ? m + 0.5 : (m + 16.5) * 2 ** (seg - 1);
  return (c & 0x80 ? 1 : -1) * 16 * magnitude12;
}

const codecs = [
  { codec: 'PCMU' as const, enc: muLawEncodeSample, dec: muLawDecodeSample, level: muLawLevel, max: 32124 },
  { codec: 'PCMA' as const, enc: aLawEncodeSample, dec: aLawDecodeSample, level: aLawLevel, max: 32256 },
];

test('payload types and silence codes are the RFC 3551 / G.711 ones', () => {
  assert.deepEqual({ ...G711_PAYLOAD_TYPE }, { PCMU: 0, PCMA: 8 });
  assert.deepEqual({ ...G711_SILENCE }, { PCMU: 0xff, PCMA: 0xd5 });
  assert.equal(muLawDecodeSample(G711_SILENCE.PCMU), 0);
  assert.equal(aLawDecodeSample(G711_SILENCE.PCMA), 8); // A-law has no zero level: +8 is the smallest
});

test('decoding matches the classic G.711 table values', () => {
  const mu: Array<[number, number]> = [
    [0x00, -32124], [0x01, -31100], [0x10, -15996], [0x70, -120], [0x7e, -8], [0x7f, 0],
    [0x80, 32124], [0xf0, 120], [0xfe, 8], [0xff, 0],
  ];
  for (const [code, value] of mu) assert.equal(muLawDecodeSample(code), value, `mu-law 0x${code.toString(16)}`);
  const a: Array<[number, number]> = [
    [0x00, -5504], [0x01, -5248], [0x2a, -32256], [0x55, -8], [0x54, -24],
    [0x80, 5504], [0xaa, 32256], [0xd5, 8], [0xd4, 24], [0xd7, 40],
  ];
  for (const [code, value] of a) assert.equal(aLawDecodeSample(code), value, `A-law 0x${code.toString(16)}`);
});

test('every code decodes to its segment/mantissa level of the G.711 definition', () => {
  for (const { codec, dec, level } of codecs) {
    for (let code = 0; code < 256; code++) assert.equal(dec(code), level(code), `${codec} code ${code}`);
  }
});

test('encoding known samples gives the G.711 / G.191 codes', () => {
  const mu: Array<[number, number]> = [
    [0, 0xff], [1, 0xff], [3, 0xff], [4, 0xfe], [-1, 0x7f], [-4, 0x7f], [-5, 0x7e],
    [32767, 0x80], [-32768, 0x00], [32124, 0x80], [-32125, 0x00], [120, 0xf0],
  ];
  for (const [x, code] of mu) assert.equal(muLawEncodeSample(x), code, `mu-law ${x}`);
  const a: Array<[number, number]> = [
    [0, 0xd5], [15, 0xd5], [16, 0xd4], [-1, 0x55], [-16, 0x55], [-17, 0x54],
    [32767, 0xaa], [-32768, 0x2a], [5504, 0x80], [-5505, 0x00],
  ];
  for (const [x, code] of a) assert.equal(aLawEncodeSample(x), code, `A-law ${x}`);
});

test('x and -1-x get mirror codes (decision levels symmetric about -0.5, as in G.191)', () => {
  for (const { codec, enc } of codecs) {
    for (let x = 0; x < 32768; x++) {
      assert.equal(enc(x) ^ enc(-1 - x), 0x80, `${codec} ${x}`);
    }
  }
});

test('each code takes one contiguous run of inputs, centred on its level', () => {
  for (const { codec, enc, dec, max } of codecs) {
    const lo = new Array<number>(256).fill(NaN);
    const hi = new Array<number>(256).fill(NaN);
    let previous = -Infinity;
    for (let x = -32768; x < 32768; x++) {
      const code = enc(x);
      const y = dec(code);
      assert.ok(y >= previous, `${codec} is not monotonic at ${x}`);
      previous = y;
      if (Number.isNaN(lo[code]!)) lo[code] = x;
      else assert.equal(hi[code], x - 1, `${codec} code 0x${code.toString(16)} is used by two separate runs`);
      hi[code] = x;
    }
    for (let code = 0; code < 256; code++) {
      const y = dec(code);
      // mu-law splits its zero level into +0 and -0, and its outermost codes also take the clipped inputs
      if (codec === 'PCMU' && (y === 0 || Math.abs(y) === max)) continue;
      assert.equal((lo[code]! + hi[code]! + 1) / 2, y, `${codec} 0x${code.toString(16)}: inputs ${lo[code]}..${hi[code]}`);
    }
  }
});

test('quantisation error is bounded by half the step of the code segment', () => {
  for (const { codec, enc, dec, max } of codecs) {
    let worst = 0;
    for (let x = -32768; x < 32768; x++) {
      const code = enc(x);
      const y = dec(code);
      const seg = codec === 'PCMU' ? (~code >> 4) & 7 : ((code ^ 0x55) >> 4) & 7;
      const halfStep = codec === 'PCMU' ? 4 << seg : seg === 0 ? 8 : 8 << (seg - 1);
      const bound = Math.abs(y) === max ? Math.max(halfStep, Math.abs(x) - max + 1) : halfStep;
      assert.ok(Math.abs(x - y) <= bound, `${codec}: ${x} -> ${y} (segment ${seg})`);
      if (Math.abs(y) < max) worst = Math.max(worst, Math.abs(x - y));
    }
    // half of the widest step (1024) is reached inside the range
    assert.equal(worst, 512, codec);
  }
});

test('re-encoding a decoded code gives the code back (mu-law negative zero becomes positive zero)', () => {
  for (const { codec, enc, dec } of codecs) {
    for (let code = 0; code < 256; code++) {
      const expected = codec === 'PCMU' && code === 0x7f ? 0xff : code;
      assert.equal(enc(dec(code)), expected, `${codec} 0x${code.toString(16)}`);
    }
  }
});

test('a 1 kHz sine at -10 dBFS keeps the G.711 SNR (about 38 dB)', () => {
  const amplitude = 32768 * 10 ** (-10 / 20); // peak of a -10 dBFS sine (0 dBFS = full-scale sine)
  for (const freq of [1000, 1020]) {
    // a phase offset keeps the 8 samples per period of 1 kHz off the zero crossings
    const x = sine(freq, 8000, 8000, amplitude, 0.3);
    for (const codec of ['PCMU', 'PCMA'] as const) {
      const y = decodeG711(codec, encodeG711(codec, x));
      const fit = fitSine(y, freq, 8000);
      assert.ok(fit.snrDb > 35 && fit.snrDb < 42, `${codec} ${freq} Hz SNR ${fit.snrDb.toFixed(1)} dB`);
      assert.ok(Math.abs(fit.amplitude / amplitude - 1) < 0.01, `${codec} gain ${fit.amplitude / amplitude}`);
    }
  }
});

test('array functions agree with the per-sample ones and fill a given buffer', () => {
  const pcm = Int16Array.from({ length: 1000 }, (_, i) => ((i * 2654435761) >>> 0) % 65536 - 32768);
  for (const { codec, enc, dec } of codecs) {
    const bytes = encodeG711(codec, pcm);
    assert.equal(bytes.length, pcm.length);
    for (let i = 0; i < pcm.length; i++) assert.equal(bytes[i], enc(pcm[i]!));
    const back = decodeG711(codec, bytes);
    for (let i = 0; i < bytes.length; i++) assert.equal(back[i], dec(bytes[i]!));

    const outBytes = new Uint8Array(1200);
    const encoded = encodeG711(codec, pcm, outBytes);
    assert.equal(encoded.buffer, outBytes.buffer);
    assert.equal(encoded.length, 1000);
    assert.deepEqual(encoded, bytes);
    const outPcm = new Int16Array(1000);
    assert.equal(decodeG711(codec, bytes, outPcm), outPcm);
    assert.deepEqual(outPcm, back);
  }
});

test('bad arguments are client errors', () => {
  assert.throws(() => encodeG711('G722' as G711Codec, new Int16Array(4)), isInvalid);
  assert.throws(() => decodeG711('pcmu' as G711Codec, new Uint8Array(4)), isInvalid);
  assert.throws(() => encodeG711('PCMU', new Int16Array(4), new Uint8Array(3)), isInvalid);
  assert.throws(() => decodeG711('PCMA', new Uint8Array(4), new Int16Array(3)), isInvalid);
});
