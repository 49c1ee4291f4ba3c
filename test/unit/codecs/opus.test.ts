import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OPUS_RTP_CLOCK, OpusFrameDecoder, OpusFrameEncoder } from '../../../src/codecs/opus.ts';
import { MediaError } from '../../../src/errors/media-error.ts';
import { rms } from './signal.ts';

const isInvalid = (err: unknown): boolean => err instanceof MediaError && err.code === 'invalid_argument';

/**
 * Something like a voiced vowel: a 140 Hz glottal pulse train's harmonics shaped by two
 * formants, with a slow syllable-rate envelope. Speech codecs are built for this; a pure
 * tone or white noise says little about them.
 */
function vowel(rate: number, seconds: number): Int16Array {
  const out = new Int16Array(Math.round(rate * seconds));
  const f0 = 140;
  const formants = [700, 1200];
  const nyquist = Math.min(rate / 2, 3800);
  for (let i = 0; i < out.length; i++) {
    const t = i / rate;
    let v = 0;
    for (let h = 1; h * f0 < nyquist; h++) {
      const f = h * f0;
      const gain = formants.reduce((g, fm) => g + 1 / (1 + ((f - fm) / 150) ** 2), 0.05);
      v += gain * Math.sin(2 * Math.PI * f * t + h * 0.7);
    }
    out[i] = Math.round(3500 * v * (0.6 + 0.4 * Math.sin(2 * Math.PI * 3 * t)));
  }
  return out;
}

/** Normalised correlation of y against x, y delayed by 0..maxLag samples: the best one. */
function bestLag(x: Int16Array, y: Int16Array, maxLag: number, from: number): { corr: number; lag: number } {
  let best = { corr: -1, lag: 0 };
  for (let lag = 0; lag <= maxLag; lag++) {
    let xy = 0;
    let xx = 0;
    let yy = 0;
    for (let i = from; i + lag < y.length && i < x.length; i++) {
      xy += x[i]! * y[i + lag]!;
      xx += x[i]! * x[i]!;
      yy += y[i + lag]! * y[i + lag]!;
    }
    const c = xy / Math.sqrt(xx * yy);
    if (c > best.corr) best = { corr: c, lag };
  }
  return best;
}

function roundTrip(rate: 8000 | 48000, complexity: number): { input: Int16Array; output: Int16Array; packets: Buffer[] } {
  const enc = new OpusFrameEncoder({ sampleRate: rate, complexity, bitrate: rate === 8000 ? 24000 : 32000 });
  const dec = new OpusFrameDecoder({ sampleRate: rate });
  const input = vowel(rate, 1);
  const output = new Int16Array(input.length);
  const packets: Buffer[] = [];
  for (let off = 0; off + enc.frameSamples <= input.length; off += enc.frameSamples) {
    const p = enc.encode(input.subarray(off, off + enc.frameSamples));
    packets.push(p);
    const pcm = dec.decode(p);
    assert.equal(pcm.length, dec.frameSamples, 'one frame in, one frame out');
    output.set(pcm, off);
  }
  return { input, output, packets };
}

test('a 20 ms frame is 160 samples at 8 kHz and 960 at 48 kHz; the RTP clock is always 48 kHz', () => {
  assert.equal(new OpusFrameEncoder({ sampleRate: 8000 }).frameSamples, 160);
  assert.equal(new OpusFrameEncoder({ sampleRate: 48000 }).frameSamples, 960);
  assert.equal(new OpusFrameEncoder({ sampleRate: 16000, channels: 2 }).frameSamples, 320);
  assert.equal(new OpusFrameDecoder({ sampleRate: 8000 }).frameSamples, 160);
  assert.equal(OPUS_RTP_CLOCK, 48000);
});

test('a frame of the wrong size and an unsupported rate are invalid arguments', () => {
  const enc = new OpusFrameEncoder({ sampleRate: 8000 });
  assert.throws(() => enc.encode(new Int16Array(159)), isInvalid);
  assert.throws(() => enc.encode(new Int16Array(320)), isInvalid);
  assert.throws(() => new OpusFrameEncoder({ sampleRate: 44100 }), isInvalid);
  assert.throws(() => new OpusFrameDecoder({ sampleRate: 22050 }), isInvalid);
  const stereo = new OpusFrameEncoder({ sampleRate: 8000, channels: 2 });
  assert.equal(stereo.encode(new Int16Array(320)).length > 0, true);
});

for (const [rate, complexity] of [
  [8000, 0],
  [8000, 5],
  [48000, 5],
] as const) {
  test(`encode/decode round trip at ${rate} Hz, complexity ${complexity}, keeps the waveform`, (t) => {
    const { input, output, packets } = roundTrip(rate, complexity);
    // Skip the first 100 ms: the encoder's first frames ramp up.
    const { corr, lag } = bestLag(input, output, rate / 100, rate / 10);
    assert.ok(corr > 0.9, `correlation ${corr.toFixed(3)} at lag ${lag}`);
    assert.ok(lag < rate / 100, `codec delay ${lag} samples`);
    const bytes = packets.reduce((n, p) => n + p.length, 0);
    const kbps = (bytes * 8) / 1000;
    t.diagnostic(`correlation ${corr.toFixed(4)}, delay ${lag} samples, ${kbps.toFixed(1)} kbit/s`);
    assert.ok(kbps > 8 && kbps < 48, `${kbps} kbit/s`);
  });
}

test('null conceals one lost frame (PLC), and decoding goes on after it', () => {
  const enc = new OpusFrameEncoder({ sampleRate: 8000 });
  const dec = new OpusFrameDecoder({ sampleRate: 8000 });
  const input = vowel(8000, 0.4);
  const frames: Int16Array[] = [];
  for (let k = 0; k < 20; k++) {
    const p = enc.encode(input.subarray(k * 160, (k + 1) * 160));
    frames.push(k === 10 ? dec.decode(null) : dec.decode(p));
  }
  for (const f of frames) assert.equal(f.length, 160);
  // Concealment continues the voice rather than going silent, and the stream recovers.
  assert.ok(rms(frames[10]!) > 0.1 * rms(frames[9]!), `concealed rms ${rms(frames[10]!).toFixed(0)} vs ${rms(frames[9]!).toFixed(0)}`);
  assert.ok(rms(frames[15]!) > 0.5 * rms(input, 15 * 160, 16 * 160));
  const fresh = new OpusFrameDecoder({ sampleRate: 8000 });
  assert.equal(fresh.decode(null).length, 160, 'PLC before any packet is one frame of silence');
});

test('a corrupt packet is a MediaError invalid_argument, and the decoder survives it', () => {
  const enc = new OpusFrameEncoder({ sampleRate: 8000 });
  const dec = new OpusFrameDecoder({ sampleRate: 8000 });
  const good = enc.encode(vowel(8000, 0.02));
  for (const bad of [Buffer.from([0xff, 0xff]), Buffer.from([0x03]), Buffer.alloc(1500, 0xff)]) {
    assert.throws(() => dec.decode(bad), (err) => isInvalid(err) && /corrupt Opus packet/.test((err as Error).message));
  }
  assert.equal(dec.decode(good).length, 160);
});
