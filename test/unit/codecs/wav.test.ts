import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeWav, isSupportedWav, parseWav, readWavInfo, toMono, wavHeader } from '../../../src/codecs/wav.ts';
import { MediaError } from '../../../src/errors/media-error.ts';
import { fitSine, noise } from './signal.ts';

const invalidWith = (pattern: RegExp) => (err: unknown): boolean =>
  err instanceof MediaError && err.code === 'invalid_argument' && pattern.test(err.message);

// ---- writing WAV files by hand -------------------------------------------------------------

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));
const u16 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff];
const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

interface Chunk {
  id: string;
  body: number[];
  /** Size to write instead of the body length (lying writers). */
  size?: number;
}

function riff(chunks: Chunk[], magic = 'RIFF'): Uint8Array {
  const bytes: number[] = [];
  for (const c of chunks) {
    bytes.push(...ascii(c.id), ...u32(c.size ?? c.body.length), ...c.body);
    if (c.body.length % 2) bytes.push(0);
  }
  return Uint8Array.from([...ascii(magic), ...u32(4 + bytes.length), ...ascii('WAVE'), ...bytes]);
}

function fmt(tag: number, channels: number, rate: number, bits: number): Chunk {
  const align = channels * Math.ceil(bits / 8);
  return { id: 'fmt ', body: [...u16(tag), ...u16(channels), ...u32(rate), ...u32(rate * align), ...u16(align), ...u16(bits)] };
}

function fmtExtensible(subTag: number, channels: number, rate: number, bits: number, validBits = bits, guidTail?: number[]): Chunk {
  const base = fmt(0xfffe, channels, rate, bits).body;
  const tail = guidTail ?? [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];
  return { id: 'fmt ', body: [...base, ...u16(22), ...u16(validBits), ...u32(0), ...u16(subTag), ...tail] };
}

const s16 = (values: number[]): number[] => values.flatMap((v) => u16(v & 0xffff));
const s24 = (values: number[]): number[] => values.flatMap((v) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff]);
const s32 = (values: number[]): number[] => values.flatMap((v) => u32(v >>> 0));
const f32 = (values: number[]): number[] => {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatLE(v, i * 4));
  return [...b];
};
const f64 = (values: number[]): number[] => {
  const b = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => b.writeDoubleLE(v, i * 8));
  return [...b];
};

const samplesOf = (buf: Uint8Array): number[] => [...parseWav(buf).samples];

// ---- formats ---------------------------------------------------------------------------------

test('16-bit PCM stereo', () => {
  const audio = parseWav(riff([fmt(1, 2, 44100, 16), { id: 'data', body: s16([1, -1, 32767, -32768, 0, 1234]) }]));
  assert.equal(audio.sampleRate, 44100);
  assert.equal(audio.channels, 2);
  assert.deepEqual([...audio.samples], [1, -1, 32767, -32768, 0, 1234]);
});

test('8-bit PCM is unsigned around 128', () => {
  assert.deepEqual(samplesOf(riff([fmt(1, 1, 8000, 8), { id: 'data', body: [0, 128, 255, 1, 127] }])), [-32768, 0, 32512, -32512, -256]);
});

test('24-bit PCM is rounded to 16 bits', () => {
  const data = s24([0x7fffff, -0x800000, 0x000080, 0x00007f, -0x80, -0x81, 0x123456, -0x123456]);
  assert.deepEqual(samplesOf(riff([fmt(1, 1, 48000, 24), { id: 'data', body: data }])), [32767, -32768, 1, 0, 0, -1, 0x1234, -0x1234]);
});

test('32-bit PCM is rounded to 16 bits', () => {
  const data = s32([0x7fffffff, -0x80000000, 0x12348000, 100 * 65536, -100 * 65536 - 0x7fff, 0x7fff]);
  assert.deepEqual(samplesOf(riff([fmt(1, 1, 8000, 32), { id: 'data', body: data }])), [32767, -32768, 0x1235, 100, -100, 0]);
});

test('IEEE float 32 and 64 bits scale by 32768 and saturate', () => {
  const values = [0, 0.5, -0.5, 1, -1, 1.5, -2, NaN, 0.25 / 32768, 100.4 / 32768];
  const expected = [0, 16384, -16384, 32767, -32768, 32767, -32768, 0, 0, 100];
  assert.deepEqual(samplesOf(riff([fmt(3, 1, 16000, 32), { id: 'data', body: f32(values) }])), expected);
  assert.deepEqual(samplesOf(riff([fmt(3, 1, 16000, 64), { id: 'data', body: f64(values) }])), expected);
});

test('A-law (6) and mu-law (7) decode through the G.711 tables', () => {
  assert.deepEqual(samplesOf(riff([fmt(6, 1, 8000, 8), { id: 'data', body: [0xd5, 0x55, 0xaa, 0x2a, 0x80] }])), [8, -8, 32256, -32256, 5504]);
  assert.deepEqual(samplesOf(riff([fmt(7, 1, 8000, 8), { id: 'data', body: [0xff, 0x7f, 0x00, 0x80, 0x7e] }])), [0, 0, -32124, 32124, -8]);
});

test('WAVE_FORMAT_EXTENSIBLE with a PCM, float or G.711 subformat', () => {
  const pcm24 = riff([fmtExtensible(1, 3, 96000, 24, 20), { id: 'data', body: s24([0x100000, -0x100000, 0x7fff00]) }]);
  const audio = parseWav(pcm24);
  assert.deepEqual([audio.sampleRate, audio.channels, [...audio.samples]], [96000, 3, [0x1000, -0x1000, 0x7fff]]);
  assert.deepEqual(samplesOf(riff([fmtExtensible(3, 1, 8000, 32), { id: 'data', body: f32([0.5]) }])), [16384]);
  assert.deepEqual(samplesOf(riff([fmtExtensible(7, 1, 8000, 8), { id: 'data', body: [0x80] }])), [32124]);
  const ambisonic = [0x00, 0x00, 0x21, 0x07, 0xd3, 0x11, 0x86, 0x44, 0xc8, 0xc1, 0xca, 0x00, 0x00, 0x00];
  assert.throws(() => parseWav(riff([fmtExtensible(1, 1, 8000, 16, 16, ambisonic), { id: 'data', body: s16([1]) }])), invalidWith(/subformat/));
});

test('any sample rate and up to 8 channels', () => {
  const audio = parseWav(riff([fmt(1, 8, 11025, 16), { id: 'data', body: s16([1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, -4, -5, -6, -7, -8]) }]));
  assert.deepEqual([audio.sampleRate, audio.channels, audio.samples.length], [11025, 8, 16]);
  assert.equal(parseWav(riff([fmt(1, 1, 7, 16), { id: 'data', body: s16([5]) }])).sampleRate, 7);
  assert.throws(() => parseWav(riff([fmt(1, 9, 8000, 16), { id: 'data', body: s16([1]) }])), invalidWith(/9 channels/));
  assert.throws(() => parseWav(riff([fmt(1, 0, 8000, 16), { id: 'data', body: s16([1]) }])), invalidWith(/0 channels/));
});

// ---- structure -------------------------------------------------------------------------------

test('unknown and odd-sized chunks are skipped with their pad byte', () => {
  const buf = riff([
    { id: 'JUNK', body: [1, 2, 3] },
    fmt(1, 1, 8000, 16),
    { id: 'fact', body: u32(3) },
    { id: 'LIST', body: [...ascii('INFOISFT'), ...u32(5), ...ascii('lavf'), 0] },
    { id: 'data', body: s16([10, 20, 30]) },
    { id: 'LIST', body: [9, 9, 9, 9, 9, 9] },
  ]);
  assert.deepEqual(samplesOf(buf), [10, 20, 30]);
});

test('an odd-sized data chunk drops the half frame and the pad byte', () => {
  const buf = riff([fmt(1, 1, 8000, 16), { id: 'data', body: [1, 0, 2, 0, 3] }, { id: 'JUNK', body: [7, 7] }]);
  assert.deepEqual(samplesOf(buf), [1, 2]);
  assert.equal(readWavInfo(buf).dataLength, 5);
});

test('a data size of 0, 0xFFFFFFFF or past the end reads to the end of the file', () => {
  const body = s16([5, -5, 6, -6, 7]);
  for (const size of [0, 0xffffffff, 1000]) {
    const buf = riff([fmt(1, 1, 8000, 16), { id: 'data', body, size }]);
    assert.deepEqual(samplesOf(buf), [5, -5, 6, -6, 7], `size ${size}`);
  }
  // a crashed stereo writer leaves half a frame at the end: it is dropped
  const torn = riff([fmt(1, 2, 8000, 16), { id: 'data', body: s16([1, 2, 3]), size: 0 }]);
  assert.deepEqual(samplesOf(torn), [1, 2]);
});

test('RF64 takes the data size from its ds64 chunk', () => {
  const ds64 = { id: 'ds64', body: [...u32(0), ...u32(0), ...u32(4), ...u32(0), ...u32(2), ...u32(0), ...u32(0)] };
  const buf = riff([ds64, fmt(1, 1, 8000, 16), { id: 'data', body: s16([3, 4]), size: 0xffffffff }, { id: 'JUNK', body: [1, 2] }], 'RF64');
  assert.deepEqual(samplesOf(buf), [3, 4]);
});

test('broken or foreign files are client errors with a clear message', () => {
  const data = { id: 'data', body: s16([1]) };
  const cases: Array<[Uint8Array, RegExp]> = [
    [new Uint8Array(0), /too short/],
    [Uint8Array.from(ascii('RIFF\0\0\0\0WAV')), /too short/],
    [Uint8Array.from([...ascii('OggS'), ...new Array(40).fill(0)]), /not a WAV file/],
    [Uint8Array.from([...ascii('RIFF'), ...u32(36), ...ascii('AVI '), ...new Array(40).fill(0)]), /not a WAV file/],
    [riff([fmt(1, 1, 8000, 16), data], 'RIFX'), /RIFX/],
    [riff([data]), /no fmt chunk/],
    [riff([fmt(1, 1, 8000, 16)]), /no data chunk/],
    [riff([fmt(1, 1, 8000, 16), { id: 'LIST', body: [1, 2], size: 4000 }]), /truncated inside its 'LIST' chunk/],
    [riff([{ id: 'fmt ', body: fmt(1, 1, 8000, 16).body.slice(0, 12) }, data]), /fmt chunk is 12 bytes/],
    [riff([fmt(0x55, 1, 8000, 0), data]), /^WAV format 85 \(MP3-in-WAV\) is not supported$/],
    [riff([fmt(0x11, 1, 8000, 4), data]), /^WAV format 17 \(IMA ADPCM\) is not supported$/],
    [riff([fmt(0x1234, 1, 8000, 16), data]), /^WAV format 4660 is not supported$/],
    [riff([fmt(3, 1, 8000, 16), data]), /float with 16 bits/],
    [riff([fmt(7, 1, 8000, 16), data]), /G\.711 with 16 bits/],
    [riff([fmt(1, 1, 8000, 48), data]), /PCM with 48 bits/],
    [riff([fmt(1, 1, 0, 16), data]), /sample rate is 0/],
    [riff([fmt(1, 1, 8000, 0), data]), /PCM with 0 bits/],
  ];
  for (const [buf, pattern] of cases) assert.throws(() => parseWav(buf), invalidWith(pattern), String(pattern));
  // garbage after a valid header still fails cleanly, never with a RangeError
  for (let cut = 0; cut < 44; cut++) {
    assert.throws(() => parseWav(encodeWav(Int16Array.of(1, 2), 8000, 1).subarray(0, cut)), (e: unknown) => e instanceof MediaError);
  }
});

test('readWavInfo reports compressed formats so callers can hand them on', () => {
  const info = readWavInfo(riff([fmt(0x55, 2, 22050, 0), { id: 'data', body: [1, 2, 3] }]));
  assert.deepEqual(info, { formatTag: 0x55, sampleRate: 22050, channels: 2, bitsPerSample: 0, dataOffset: 44, dataLength: 3 });
  assert.equal(isSupportedWav(info), false);
  assert.equal(isSupportedWav(readWavInfo(riff([fmt(1, 1, 8000, 16), { id: 'data', body: [] }]))), true);
});

// ---- writing ---------------------------------------------------------------------------------

test('wavHeader writes the canonical 44-byte 16-bit PCM header', () => {
  const h = wavHeader({ sampleRate: 8000, channels: 1, dataBytes: 320 });
  assert.equal(h.length, 44);
  const expected = [
    ...ascii('RIFF'), ...u32(356), ...ascii('WAVE'), ...ascii('fmt '), ...u32(16), ...u16(1), ...u16(1),
    ...u32(8000), ...u32(16000), ...u16(2), ...u16(16), ...ascii('data'), ...u32(320),
  ];
  assert.deepEqual([...h], expected);
  const stereo = wavHeader({ sampleRate: 48000, channels: 2, dataBytes: 0 });
  assert.equal(stereo.readUInt32LE(28), 192000);
  assert.equal(stereo.readUInt16LE(32), 4);
  for (const bad of [{ sampleRate: 0, channels: 1, dataBytes: 0 }, { sampleRate: 8000, channels: 9, dataBytes: 0 }, { sampleRate: 8000, channels: 1, dataBytes: 3 }, { sampleRate: 8000, channels: 1, dataBytes: -2 }, { sampleRate: 8000.5, channels: 1, dataBytes: 0 }]) {
    assert.throws(() => wavHeader(bad), invalidWith(/WAV/), JSON.stringify(bad));
  }
});

test('encodeWav -> parseWav gives the samples back', () => {
  for (const channels of [1, 2, 5]) {
    const samples = noise(3000 * channels, 32767, channels);
    samples[0] = -32768;
    const file = encodeWav(samples, 16000, channels);
    assert.equal(file.length, 44 + samples.length * 2);
    const audio = parseWav(file);
    assert.deepEqual(audio, { sampleRate: 16000, channels, samples });
  }
  // a view into a larger buffer writes only its own samples
  const big = Int16Array.of(9, 1, 2, 3, 9);
  assert.deepEqual([...parseWav(encodeWav(big.subarray(1, 4), 8000, 1)).samples], [1, 2, 3]);
  assert.throws(() => encodeWav(Int16Array.of(1, 2, 3), 8000, 2), invalidWith(/whole frames/));
});

test('toMono averages the channels of each frame', () => {
  assert.deepEqual([...toMono({ sampleRate: 8000, channels: 2, samples: Int16Array.of(100, 200, -32768, -32768, 32767, -32767, 5, 8) })], [150, -32768, 0, 7]);
  assert.deepEqual([...toMono({ sampleRate: 8000, channels: 3, samples: Int16Array.of(3, 6, 9, -1, -1, -2) })], [6, -1]);
  const mono = Int16Array.of(1, 2, 3);
  assert.equal(toMono({ sampleRate: 8000, channels: 1, samples: mono }), mono);
  const out = new Int16Array(4);
  assert.deepEqual([...toMono({ sampleRate: 8000, channels: 2, samples: Int16Array.of(2, 4, 6, 8) }, out)], [3, 7]);
  assert.deepEqual([...out], [3, 7, 0, 0]);
});

// ---- against real ffmpeg output --------------------------------------------------------------

const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0;

test('WAV files written by ffmpeg parse with the right shape and a 440 Hz tone', { skip: !hasFfmpeg && 'ffmpeg is not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wav-ffmpeg-'));
  try {
    // lavfi's sine peaks at 1/8 of full scale; upmixing mono to stereo spreads it at -3 dB per side
    const amplitude = 4096 * Math.SQRT1_2;
    const cases: Array<[string, string[], number]> = [
      ['pcm_s24le', [], 60],
      ['pcm_s16le', [], 60],
      ['pcm_mulaw', [], 30],
      ['pcm_alaw', [], 30],
      ['pcm_f32le', [], 60],
      ['pcm_f64le', [], 60],
      ['pcm_u8', [], 25],
      ['pcm_s32le', ['-rf64', 'always'], 60],
    ];
    for (const [codec, extra, minSnr] of cases) {
      const file = join(dir, `${codec}.wav`);
      const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-ar', '22050', '-ac', '2', '-c:a', codec, ...extra, file]);
      assert.equal(r.status, 0, r.stderr.toString());
      const audio = parseWav(readFileSync(file));
      assert.equal(audio.sampleRate, 22050, codec);
      assert.equal(audio.channels, 2, codec);
      assert.ok(Math.abs(audio.samples.length / 2 - 22050) <= 32, `${codec}: ${audio.samples.length / 2} frames`);
      const left = audio.samples.filter((_, i) => i % 2 === 0);
      const fit = fitSine(left, 440, 22050, 1000, 21000);
      assert.ok(Math.abs(fit.amplitude / amplitude - 1) < 0.02, `${codec}: amplitude ${fit.amplitude}`);
      assert.ok(fit.snrDb > minSnr, `${codec}: SNR ${fit.snrDb.toFixed(1)} dB`);
    }
    // streamed to a pipe, ffmpeg cannot seek back and leaves the sizes at 0xFFFFFFFF
    const piped = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-ar', '8000', '-ac', '1', '-f', 'wav', 'pipe:1'], { maxBuffer: 1 << 24 });
    assert.equal(piped.stdout.readUInt32LE(4), 0xffffffff);
    const audio = parseWav(piped.stdout);
    assert.equal(audio.samples.length, 8000);
    const fit = fitSine(audio.samples, 440, 8000, 400, 7600);
    assert.ok(fit.snrDb > 60 && Math.abs(fit.amplitude / 4096 - 1) < 0.02, `piped: SNR ${fit.snrDb.toFixed(1)} dB, amplitude ${fit.amplitude}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
