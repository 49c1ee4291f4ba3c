import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Resampler, resample } from '../../../src/codecs/resampler.ts';
import { MediaError } from '../../../src/errors/media-error.ts';
import { db, fitSine, noise, rms, sine, snrDb } from './signal.ts';

const isInvalid = (err: unknown): boolean => err instanceof MediaError && err.code === 'invalid_argument';

const PAIRS: Array<[number, number]> = [
  [8000, 16000], [16000, 8000], [8000, 48000], [48000, 8000], [44100, 8000], [8000, 44100],
  [44100, 48000], [48000, 44100], [22050, 16000], [11025, 8000], [32000, 24000], [24000, 8000],
  [8000, 44101], // no small common divisor: the interpolated-phase path
];

function concat(parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function streamInChunks(r: Resampler, input: Int16Array, sizes: number[]): Int16Array {
  const parts: Int16Array[] = [];
  let k = 0;
  for (let i = 0; i < input.length; k++) {
    const size = sizes[k % sizes.length]!;
    parts.push(r.process(input.subarray(i, i + size)));
    i += size;
  }
  parts.push(r.flush());
  return concat(parts);
}

/** An ideal sine sampled at `rate`, the reference a perfect resampler would produce. */
const ideal = (freq: number, rate: number, length: number, amplitude: number, phase = 0): Int16Array =>
  sine(freq, rate, length, amplitude, phase);

test('rates must be integers in the supported range', () => {
  for (const [a, b] of [[0, 8000], [8000, -1], [8000.5, 16000], [8000, NaN], [999, 8000], [8000, 768001]]) {
    assert.throws(() => new Resampler(a!, b!), isInvalid, `${a} -> ${b}`);
    assert.throws(() => resample(new Int16Array(10), a!, b!), isInvalid);
  }
});

test('equal rates pass the samples through as a copy', () => {
  const x = noise(1000, 20000);
  const r = new Resampler(16000, 16000);
  assert.equal(r.delay, 0);
  const y = r.process(x);
  assert.deepEqual(y, x);
  assert.notEqual(y.buffer, x.buffer);
  assert.equal(r.flush().length, 0);
  const one = resample(x, 8000, 8000);
  assert.deepEqual(one, x);
  assert.notEqual(one.buffer, x.buffer);
});

test('one-shot output has round(n * out / in) samples', () => {
  for (const [a, b] of PAIRS) {
    for (const n of [0, 1, 2, 5, 159, 160, 441, 882, 1001]) {
      assert.equal(resample(new Int16Array(n), a, b).length, Math.round((n * b) / a), `${a} -> ${b}, ${n} samples`);
    }
  }
});

test('a constant level comes out exactly unchanged (unit DC gain at every phase)', () => {
  for (const [a, b] of PAIRS) {
    const y = resample(new Int16Array(a / 10 | 0).fill(-12345), a, b);
    const edge = Math.ceil(0.01 * b); // the ends see the silence beyond the signal
    for (let i = edge; i < y.length - edge; i++) assert.equal(y[i], -12345, `${a} -> ${b} at ${i}`);
  }
});

test('1 kHz through 8k -> 16k -> 8k keeps frequency, phase and level (SNR > 40 dB vs ideal)', () => {
  const x = ideal(1000, 8000, 8000, 16000, 0.7);
  const up = resample(x, 8000, 16000);
  assert.ok(snrDb(up, ideal(1000, 16000, 16000, 16000, 0.7), 320, 15680) > 40);
  const back = resample(up, 16000, 8000);
  assert.equal(back.length, 8000);
  const snr = snrDb(back, x, 160, 7840);
  assert.ok(snr > 40, `SNR ${snr.toFixed(1)} dB`);
});

test('1 kHz through every rate pair matches the ideal sine at the output rate', () => {
  for (const [a, b] of PAIRS) {
    const y = resample(ideal(1000, a, a, 16000, 0.3), a, b);
    const margin = Math.ceil(0.02 * b);
    const snr = snrDb(y, ideal(1000, b, b, 16000, 0.3), margin, b - margin);
    assert.ok(snr > 40, `${a} -> ${b}: SNR ${snr.toFixed(1)} dB`);
  }
});

test('48k -> 8k keeps a 1 kHz tone at 1 kHz', () => {
  const y = resample(ideal(1000, 48000, 96000, 12000, 1.1), 48000, 8000);
  assert.equal(y.length, 16000);
  const fit = fitSine(y, 1000, 8000, 200, 15800);
  assert.ok(fit.snrDb > 40, `SNR ${fit.snrDb.toFixed(1)}`);
  assert.ok(Math.abs(fit.amplitude / 12000 - 1) < 0.005, `gain ${fit.amplitude / 12000}`);
  // a frequency error of even 1 Hz would leave a large residual against 1000 Hz over 2 s
  assert.ok(fitSine(y, 1001, 8000, 200, 15800).snrDb < 10);
});

test('16k -> 8k passes 3.5 kHz and removes 6 kHz (anti-aliasing)', () => {
  const amp = 16000;
  const pass = resample(sine(3500, 16000, 16000, amp), 16000, 8000);
  const gain = db(fitSine(pass, 3500, 8000, 400, 7600).amplitude / amp);
  assert.ok(gain > -0.5, `3.5 kHz gain ${gain.toFixed(2)} dB`);
  const stop = resample(sine(6000, 16000, 16000, amp), 16000, 8000);
  // 6 kHz would fold to 2 kHz: measure everything left in the output
  const attenuation = -db(rms(stop, 400, 7600) / (amp / Math.SQRT2));
  assert.ok(attenuation > 40, `6 kHz attenuated by ${attenuation.toFixed(1)} dB`);
  // the same for a decimation by a non-integer factor
  const stop44 = resample(sine(5000, 44100, 44100, amp), 44100, 8000);
  assert.ok(-db(rms(stop44, 400, 7600) / (amp / Math.SQRT2)) > 40);
});

test('the stopband starts just above the lower Nyquist frequency and holds 60 dB', () => {
  const amp = 16000;
  for (const [a, b] of [[16000, 8000], [48000, 8000], [44100, 8000], [48000, 16000]] as const) {
    const nyquist = b / 2;
    for (const f of [nyquist * 1.075, nyquist * 1.25, nyquist * 1.5, nyquist * 1.9, a / 2 - 100]) {
      const y = resample(sine(f, a, a, amp), a, b);
      const attenuation = -db(rms(y, b / 10, b - b / 10) / (amp / Math.SQRT2));
      assert.ok(attenuation > 60, `${a} -> ${b}: ${f} Hz only ${attenuation.toFixed(1)} dB down`);
    }
    // and the passband reaches 0.85 of Nyquist (3.4 kHz at 8 kHz) flat within 0.1 dB
    const y = resample(sine(nyquist * 0.85, a, a, amp), a, b);
    const gain = db(fitSine(y, nyquist * 0.85, b, b / 10, b - b / 10).amplitude / amp);
    assert.ok(Math.abs(gain) < 0.1, `${a} -> ${b}: passband gain ${gain.toFixed(3)} dB`);
  }
});

test('8k -> 16k leaves no image of a 3 kHz tone at 5 kHz', () => {
  const y = resample(sine(3000, 8000, 8000, 16000), 8000, 16000);
  const tone = fitSine(y, 3000, 16000, 800, 15200).amplitude;
  const image = fitSine(y, 5000, 16000, 800, 15200).amplitude;
  assert.ok(db(tone / 16000) > -0.5);
  assert.ok(db(image / 16000) < -40, `image at ${db(image / 16000).toFixed(1)} dB`);
});

test('any chunking of the input gives exactly the one-shot output', () => {
  const x = concat([noise(3000, 12000, 7), sine(700, 8000, 3000, 9000), noise(2111, 30000, 99)]);
  for (const [a, b] of PAIRS) {
    const whole = resample(x, a, b);
    // chunks of one sample never leave four outputs to make at once, so the SIMD kernel makes them
    // one at a time; long ones, four at a time: the two must give the same bits
    for (const sizes of [[1], [7], [160], [441], [1, 1000, 3, 4096, 5000, 2]]) {
      const chunked = streamInChunks(new Resampler(a, b), x, sizes);
      assert.deepEqual(chunked, whole, `${a} -> ${b} in chunks of ${sizes.join(',')}`);
    }
  }
});

test('ten minutes of 20 ms frames neither drift nor lose a sample', () => {
  const cases = [[8000, 16000, 600], [16000, 8000, 600], [8000, 48000, 600], [44100, 8000, 600], [8000, 44101, 60]] as const;
  for (const [a, b, seconds] of cases) {
    const r = new Resampler(a, b);
    const frame = noise(a / 50, 8000, a);
    const out = new Int16Array(r.maxOutputLength(frame.length));
    const lag = Math.ceil((r.delay * b) / a) + 1;
    let inputs = 0;
    let outputs = 0;
    for (let f = 0; f < 50 * seconds; f++) {
      outputs += r.process(frame, out).length;
      inputs += frame.length;
      const exact = (inputs * b) / a;
      // only the constant latency separates the stream from the exact count, never a growing error
      assert.ok(outputs <= exact && outputs >= exact - lag, `${a} -> ${b} frame ${f}: ${outputs} vs ${exact}`);
    }
    outputs += r.flush(out).length;
    assert.ok(Math.abs(outputs - (inputs * b) / a) <= 1, `${a} -> ${b}: ${outputs} vs ${(inputs * b) / a}`);
  }
});

test('a tone burst starts and ends at the same time in the output', () => {
  for (const [a, b] of [[8000, 16000], [16000, 8000], [48000, 8000], [44100, 8000], [8000, 48000]] as const) {
    const x = new Int16Array(a / 2);
    const start = Math.round(0.1 * a);
    const end = Math.round(0.3 * a);
    x.set(sine(1000, a, end - start, 20000), start);
    const y = resample(x, a, b);
    const above = (v: number): boolean => Math.abs(v) > 10000;
    const first = y.findIndex(above) / b;
    const last = (y.length - 1 - [...y].reverse().findIndex(above)) / b;
    const firstIn = x.findIndex(above) / a;
    const lastIn = (x.length - 1 - [...x].reverse().findIndex(above)) / a;
    assert.ok(Math.abs(first - firstIn) <= 0.001, `${a} -> ${b}: starts at ${first} s, input at ${firstIn} s`);
    assert.ok(Math.abs(last - lastIn) <= 0.001, `${a} -> ${b}: ends at ${last} s, input at ${lastIn} s`);
    assert.ok(Math.abs(first - 0.1) <= 0.001);
  }
});

test('the held-back latency is the kernel half-width: 2.25 ms at 8 kHz', () => {
  for (const [a, b, delay] of [[8000, 16000, 18], [16000, 8000, 36], [48000, 8000, 108], [8000, 48000, 18]] as const) {
    const r = new Resampler(a, b);
    assert.equal(r.delay, delay);
    // after n inputs, exactly the outputs whose time is `delay` samples before the newest input are out
    const n = 1000;
    assert.equal(r.process(new Int16Array(n)).length, Math.ceil(((n - delay) * b) / a), `${a} -> ${b}`);
  }
});

test('delayed: each 20 ms packet gives its whole 20 ms at once, the aligned output lag samples later', () => {
  const x = noise(8000, 12000, 3);
  for (const [a, b] of [[8000, 16000], [16000, 8000], [8000, 48000], [8000, 44101]] as const) {
    const input = a === 8000 ? x : resample(x, 8000, a);
    const r = new Resampler(a, b, { delayed: true });
    assert.equal(r.lag, r.delay);
    const parts: Int16Array[] = [];
    for (let i = 0; i < input.length; i += a / 50) {
      parts.push(r.process(input.subarray(i, i + a / 50)));
      assert.equal(parts.reduce((n, p) => n + p.length, 0), Math.ceil(((i + a / 50) * b) / a), `${a} -> ${b}: nothing held back after packet ${i / (a / 50)}`);
    }
    parts.push(r.flush());
    const delayed = concat(parts);
    const aligned = resample(input, a, b);
    const shift = Math.round((r.lag * b) / a);
    assert.equal(delayed.length, aligned.length + shift, `${a} -> ${b}: the tail comes out at flush`);
    // Where the lag is a whole number of output samples, the same kernel saw the same input.
    if ((r.lag * b) % a === 0) {
      for (let i = 0; i < aligned.length; i++) assert.equal(delayed[i + shift], aligned[i], `${a} -> ${b}: sample ${i}`);
    }
  }
});

test('full-scale input saturates instead of wrapping around', () => {
  for (const [a, b] of [[8000, 16000], [48000, 8000], [8000, 44100]] as const) {
    // a full-scale square wave rings about 9% past full scale at every edge
    const square = (level: number): Int16Array =>
      Int16Array.from({ length: a / 2 }, (_, i) => (Math.floor((i * 500) / a) % 2 ? -level : level));
    const full = resample(square(32767), a, b);
    const half = resample(square(16384), a, b);
    let clipped = 0;
    for (let i = 0; i < full.length; i++) {
      // the filter is linear, so the full-scale output is the half-scale one doubled, then clamped
      const linear = (half[i]! * 32767) / 16384;
      const expected = Math.max(-32768, Math.min(32767, linear));
      if (expected !== linear) clipped++;
      assert.ok(Math.abs(full[i]! - expected) <= 2, `${a} -> ${b} at ${i}: ${full[i]} instead of ${expected}`);
    }
    assert.ok(clipped > 10, `${a} -> ${b}: the test signal did not overshoot`);
  }
});

test('flush() and reset() start a fresh stream', () => {
  const x = noise(5000, 10000, 3);
  const z = noise(4000, 10000, 4);
  for (const [a, b] of [[8000, 16000], [44100, 8000]] as const) {
    const r = new Resampler(a, b);
    streamInChunks(r, x, [333]);
    assert.deepEqual(streamInChunks(r, z, [160]), resample(z, a, b), 'after flush');
    r.process(x);
    r.reset();
    assert.deepEqual(streamInChunks(r, z, [160]), resample(z, a, b), 'after reset');
  }
});

test('output buffers: results land in the given array, and a short one is refused', () => {
  const r = new Resampler(8000, 16000);
  const x = noise(800, 10000, 11);
  const out = new Int16Array(r.maxOutputLength(x.length));
  const y = r.process(x, out);
  assert.equal(y.buffer, out.buffer);
  const fresh = new Resampler(8000, 16000).process(x);
  assert.deepEqual(y, fresh);
  assert.equal(fresh.buffer.byteLength, fresh.byteLength, 'an allocated result is exactly its samples');
  assert.throws(() => r.process(x, new Int16Array(10)), isInvalid);
});

test('exact tables run the WebAssembly SIMD loop, and it gives the JavaScript loop\'s output within one step', () => {
  const x = noise(8000 * 2, 12000, 11);
  for (const [a, b] of PAIRS) {
    const input = a === 8000 ? x : resample(x, 8000, a);
    const simd = new Resampler(a, b);
    const js = new Resampler(a, b, { simd: false });
    assert.equal(js.kernel, 'js');
    if (b === 44101 || a === 44101) {
      assert.equal(simd.kernel, 'js', 'interpolated phases stay in JavaScript');
      continue;
    }
    assert.equal(simd.kernel, 'simd', `${a} -> ${b}`);
    const sizes = [a / 50, 7, a / 10];
    const ys = streamInChunks(simd, input, sizes);
    const yj = streamInChunks(js, input, sizes);
    assert.equal(ys.length, yj.length, `${a} -> ${b}`);
    let worst = 0;
    let differing = 0;
    for (let i = 0; i < ys.length; i++) {
      const d = Math.abs(ys[i]! - yj[i]!);
      if (d > 0) differing++;
      worst = Math.max(worst, d);
    }
    assert.ok(worst <= 1, `${a} -> ${b}: differs by ${worst}`);
    assert.ok(differing < ys.length * 0.05, `${a} -> ${b}: ${differing} of ${ys.length} samples differ`);
  }
});

test('speed (reported, not asserted)', (t) => {
  const x = noise(8000 * 60, 10000, 5);
  for (const [a, b] of [[8000, 16000], [16000, 8000], [48000, 8000]] as const) {
    const input = a === 8000 ? x : resample(x, 8000, a);
    for (const simd of [true, false]) {
      const r = new Resampler(a, b, { simd });
      const out = new Int16Array(r.maxOutputLength(a / 50));
      const started = performance.now();
      for (let i = 0; i < input.length; i += a / 50) r.process(input.subarray(i, i + a / 50), out);
      const ms = performance.now() - started;
      t.diagnostic(`${a} -> ${b} (${r.kernel}): ${Math.round(60000 / ms)}x real time`);
    }
  }
});
