import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { concatPcm, speechFixtures } from '../../helpers/audio.ts';
import { assertHoldsReference, describeMatch, matchReference, type HoldOptions } from '../../helpers/reference-match.ts';
import { decodeG711, encodeG711 } from '../../../src/codecs/g711.ts';
import { resample } from '../../../src/codecs/resampler.ts';
import { rms } from '../codecs/signal.ts';

const available = (cmd: string, flag: string): boolean => {
  try {
    execFileSync(cmd, [flag], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
// The reference is real speech, made on this machine like the integration tests' fixtures.
const skip = available('ffmpeg', '-version') && available('espeak-ng', '--version') ? false : 'ffmpeg and espeak-ng make the speech fixture';

const RATE = 8000;
const silence = (ms: number, rate = RATE): Int16Array => new Int16Array((rate * ms) / 1000);
const seconds = (x: Int16Array, from: number, to: number): Int16Array => x.subarray(from * RATE, to * RATE);
const opts: HoldOptions = { what: 'the copy' };
/** The browser path's tolerances: Opus through Chromium, concealment on a busy machine. */
const LOOSE: Partial<HoldOptions> = { minCorr: 0.6, maxDriftMs: 200, minCoverage: 0.9, maxGapMs: 500 };

describe('matchReference / assertHoldsReference', { skip }, () => {
  const ref = (): Int16Array => speechFixtures().pcm8k;

  test('the fixture is long enough for these cases', () => {
    assert.ok(ref().length > 6 * RATE, `${ref().length / RATE} s`);
  });

  test('a clean delayed copy: every window found at the delay, level unchanged', (t) => {
    const got = concatPcm([silence(337), ref(), silence(500)]);
    const m = assertHoldsReference(got, ref(), RATE, opts);
    t.diagnostic(describeMatch(m));
    assert.equal(m.lag, (RATE * 337) / 1000);
    assert.ok(m.windows.every((w) => w.lag === m.lag && w.corr > 0.999));
    assert.ok(Math.abs(m.levelDb) < 0.01);
  });

  for (const codec of ['PCMU', 'PCMA'] as const) {
    test(`a ${codec}-coded copy passes`, (t) => {
      const coded = decodeG711(codec, encodeG711(codec, ref()));
      const m = assertHoldsReference(concatPcm([silence(120), coded]), ref(), RATE, opts);
      t.diagnostic(describeMatch(m));
      assert.ok(m.medianCorr > 0.99);
    });
  }

  test('a resampled copy passes: 16 kHz speech through an 8 kHz leg and back', (t) => {
    const pcm16k = speechFixtures().pcm16k;
    const narrow = resample(resample(pcm16k, 16000, 8000), 8000, 16000);
    const m = assertHoldsReference(concatPcm([silence(80, 16000), narrow]), pcm16k, 16000, { ...opts, minCorr: 0.8 });
    t.diagnostic(describeMatch(m));
  });

  test('a frame of silence inserted (a late packet concealed, then played) is a slip, not missing audio', (t) => {
    // In the middle of the loudest window, where the shift hurts its correlation most.
    const w = RATE / 4;
    const starts = Array.from({ length: Math.floor(ref().length / w) }, (_, k) => k * w);
    const loud = starts.reduce((a, b) => (rms(ref(), b, b + w) > rms(ref(), a, a + w) ? b : a));
    const at = loud + w / 2;
    const got = concatPcm([ref().subarray(0, at), silence(20), ref().subarray(at)]);
    const m = assertHoldsReference(got, ref(), RATE, opts);
    t.diagnostic(describeMatch(m));
    assert.equal(m.slips, 1);
    assert.deepEqual(new Set(m.windows.map((x) => x.lagEnd)), new Set([0, 160]));
  });

  test('a slip a quarter into a window (not at its middle) is a slip too, at every offset', (t) => {
    const w = RATE / 4;
    const starts = Array.from({ length: Math.floor(ref().length / w) }, (_, k) => k * w);
    const loud = starts.reduce((a, b) => (rms(ref(), b, b + w) > rms(ref(), a, a + w) ? b : a));
    for (const frac of [0.2, 0.3, 0.7, 0.8]) {
      const at = loud + Math.round(w * frac);
      const got = concatPcm([ref().subarray(0, at), silence(20), ref().subarray(at)]);
      const m = assertHoldsReference(got, ref(), RATE, opts);
      t.diagnostic(`${frac}: ${describeMatch(m)}`);
      assert.ok(m.slips <= 1);
    }
  });

  test('120 ms inserted (a playout cushion after an underrun) is disorder unless inserted delay is allowed', (t) => {
    const at = Math.round(ref().length / 2);
    const got = concatPcm([ref().subarray(0, at), silence(120), ref().subarray(at)]);
    const strict = matchReference(got, ref(), RATE, { maxDriftMs: 200 });
    t.diagnostic(describeMatch(strict));
    assert.equal(strict.outOfOrder, 1);
    const loose = matchReference(got, ref(), RATE, { maxDriftMs: 200, maxInsertedDelayMs: 200 });
    assert.equal(loose.outOfOrder, 0);
    // Inserted delay never excuses audio played earlier than before (a cut, or a repeat).
    const cut = concatPcm([ref().subarray(0, at), ref().subarray(at + 960)]);
    assert.ok(matchReference(cut, ref(), RATE, { maxDriftMs: 200, maxInsertedDelayMs: 200 }).outOfOrder >= 1);
  });

  test('a copy that loses a 20 ms frame every second (a fast far-end clock) passes within the drift', (t) => {
    const parts: Int16Array[] = [];
    for (let at = 0; at < ref().length; at += RATE) parts.push(ref().subarray(at, Math.min(ref().length, at + RATE - 160)));
    const m = assertHoldsReference(concatPcm(parts), ref(), RATE, { ...opts, maxDriftMs: 200 });
    t.diagnostic(describeMatch(m));
  });

  const fails: [string, () => Int16Array, RegExp][] = [
    ['truncated: the first half only', () => seconds(ref(), 0, ref().length / RATE / 2), /coverage below 1; a gap longer than 0 ms/],
    ['cut short: the last second missing', () => ref().subarray(0, ref().length - RATE), /a gap longer/],
    ['a second played twice', () => concatPcm([seconds(ref(), 0, 3), seconds(ref(), 2, 3), ref().subarray(3 * RATE)]), /coverage below 1/],
    ['silent', () => silence((ref().length * 1000) / RATE), /coverage below 1.*level outside/],
    ['time-reversed', () => ref().slice().reverse(), /coverage below 1/],
    ['its seconds shuffled', () => concatPcm([3, 0, 5, 1, 4, 2].map((s) => ref().subarray(s * RATE, (s + 1) * RATE)).concat(ref().subarray(6 * RATE))), /coverage below 1/],
  ];
  for (const [what, make, reason] of fails) {
    test(`fails on a copy ${what}`, (t) => {
      const got = concatPcm([silence(250), make(), silence(250)]);
      t.diagnostic(describeMatch(matchReference(got, ref(), RATE)));
      assert.throws(() => assertHoldsReference(got, ref(), RATE, opts), (e: Error) => {
        assert.match(e.message, /^the copy does not hold the whole reference/);
        assert.match(e.message, reason);
        return true;
      });
      // Even tolerances as loose as the browser path's do not let it through.
      assert.throws(() => assertHoldsReference(got, ref(), RATE, { ...opts, ...LOOSE }));
    });
  }

  test('two windows swapped within the drift are out of order', (t) => {
    const w = RATE / 4;
    const got = concatPcm([ref().subarray(0, 8 * w), ref().subarray(9 * w, 10 * w), ref().subarray(8 * w, 9 * w), ref().subarray(10 * w)]);
    const m = matchReference(got, ref(), RATE, { maxDriftMs: 300 });
    t.diagnostic(describeMatch(m));
    assert.ok(m.outOfOrder > 0);
    assert.throws(() => assertHoldsReference(got, ref(), RATE, { ...opts, maxDriftMs: 300 }), /windows out of order/);
  });
});
