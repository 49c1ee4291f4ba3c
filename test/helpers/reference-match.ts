/**
 * Does received audio hold the whole of a reference, in order? The one audio check of the
 * integration tests.
 *
 * One correlation normalised over the overlap of two signals is as high for half of the
 * reference as for all of it, and a window searched at every lag is found even when it is
 * played twice or out of place. So the reference is cut into windows, one global alignment
 * is found (normalised by the energy of the whole reference, so that what is missing
 * lowers it), and every speech window must be found at that alignment, give or take a
 * stated drift, each no further from the previous one than a stated step. A frame dropped
 * or repeated (a slip) moves what follows by 20 ms; a window it falls in is found as two
 * halves instead.
 */

export interface MatchOptions {
  /** Length of the windows the reference is cut into. Default 250 ms. */
  windowMs?: number;
  /** Correlation from which a window counts as found. Default 0.9. */
  minCorr?: number;
  /** How far a window may sit from the global alignment: clock drift, slips. Default 60 ms. */
  maxDriftMs?: number;
  /** How far a found window may sit from the previous found one, per window. Default 30 ms. */
  maxStepMs?: number;
  /**
   * A later window found this much later still than the previous one is delay inserted (a
   * playout buffer adding a cushion after an underrun), not disorder. Default 0: none.
   */
  maxInsertedDelayMs?: number;
}

export interface WindowMatch {
  /** Start in the reference, in samples. */
  at: number;
  /** received[at + lag] lines up with reference[at]. */
  lag: number;
  /** The lag of the window's second part: another than `lag` where a frame slipped inside it. */
  lagEnd: number;
  corr: number;
  found: boolean;
  /** Found as two parts at lags a step apart, not whole at one. */
  split: boolean;
  /** Where the second part starts, in samples from `at` (half the window unless split elsewhere). */
  splitAt?: number;
}

export interface ReferenceMatch {
  rate: number;
  windowMs: number;
  minCorr: number;
  /** The global alignment, in samples: received[i + lag] lines up with reference[i]. */
  lag: number;
  /** The reference's speech windows, in order (silent ones hold nothing to find). */
  windows: WindowMatch[];
  /** Fraction of the speech windows found. */
  coverage: number;
  /** Longest stretch of the reference whose speech windows were all missed, and where it starts. */
  longestGapMs: number;
  gapAtMs: number;
  /** Found windows that moved more than the step from the previous found one. */
  outOfOrder: number;
  /** Windows found only as two halves. */
  slips: number;
  /** Energy of the received audio over the found windows against the reference's, dB. */
  levelDb: number;
  medianCorr: number;
}

export interface HoldOptions extends MatchOptions {
  /** What is being checked, for the message. */
  what: string;
  /** Default 1: every speech window is found. */
  minCoverage?: number;
  /** Longest stretch allowed to be missed. Default 0. */
  maxGapMs?: number;
  /** Allowed level of the received audio against the reference. Default [-6, 3] dB. */
  levelDb?: [number, number];
}

/**
 * For paths through Opus: it keeps the waveform of voiced speech but codes noise-like
 * stretches (fricatives) by their spectrum, so those windows correlate less (the window at
 * 5.5 s of the speech fixture comes out near 0.7 on every Opus path), while a window out of
 * place mostly correlates below 0.3.
 */
export const OPUS_MATCH: Readonly<MatchOptions> = Object.freeze({ minCorr: 0.6 });

/** Windows quieter than this hold no speech to find. */
const SPEECH_DBFS = -40;

/**
 * The reference's speech windows located in `received`; both at `rate`. The received
 * audio may hold more than the reference (lead-in, trailing silence, later speech).
 */
export function matchReference(received: Int16Array, reference: Int16Array, rate: number, opts: MatchOptions = {}): ReferenceMatch {
  const ms = (v: number): number => Math.round((v * rate) / 1000);
  const p: Params = {
    rate,
    windowMs: opts.windowMs ?? 250,
    minCorr: opts.minCorr ?? 0.9,
    w: ms(opts.windowMs ?? 250),
    drift: ms(opts.maxDriftMs ?? 60),
    step: ms(opts.maxStepMs ?? 30),
    inserted: ms(opts.maxInsertedDelayMs ?? 0),
    d: Math.max(1, Math.round(rate / 1000)),
  };
  const rec = new Signal(received, p.d);
  // Of the few best alignments, the one that finds most of the reference: a source that
  // loops (a fake microphone playing a file) holds it more than once and cut at the edges,
  // and clock drift blurs the one correlation that ranks them.
  const matches = candidateLags(rec, new Signal(reference, p.d), rate).map((lag) => matchAt(rec, reference, lag, p));
  return matches.sort((a, b) => b.coverage - a.coverage || a.outOfOrder - b.outOfOrder || b.medianCorr - a.medianCorr)[0]!;
}

interface Params {
  rate: number;
  windowMs: number;
  minCorr: number;
  /** Window, drift, step and inserted delay in samples; d: the coarse searches' averaging. */
  w: number;
  inserted: number;
  drift: number;
  step: number;
  d: number;
}

/** The reference's speech windows searched for near one global alignment. */
function matchAt(rec: Signal, reference: Int16Array, lag: number, p: Params): ReferenceMatch {
  const { rate, windowMs, minCorr, w, drift, step, d } = p;
  const received = rec.x;
  // Where a stretch of the reference [from, from + n) is in the received audio, if near the alignment.
  const find = (from: number, n: number): { lag: number; corr: number } => {
    const best = locate(rec, new Signal(reference.subarray(from, from + n), d), from + lag - drift, from + lag + drift);
    return { lag: best.lag - from, corr: best.corr };
  };
  const windows: WindowMatch[] = [];
  for (const at of windowStarts(reference.length, w)) {
    if (dbfs(reference.subarray(at, at + w)) < SPEECH_DBFS) continue;
    const whole = find(at, w);
    const m: WindowMatch = { at, lag: whole.lag, lagEnd: whole.lag, corr: whole.corr, found: whole.corr >= minCorr, split: false };
    if (!m.found) {
      // A frame slipped inside the window (anywhere: the slip is on the received side's
      // frame grid, not the window's): the lags of its first and last 60 ms, then every cut
      // 2.5 ms apart between them, each part correlated at its own lag.
      const cut = Math.max(1, Math.round(rate / 400));
      const minPart = Math.round(rate * 0.06);
      const head = find(at, minPart);
      const tail = find(at + w - minPart, minPart);
      if (Math.abs(tail.lag - head.lag) <= step) {
        for (let k = minPart; k <= w - minPart; k += cut) {
          // A quiet part holds nothing to find; it goes with the other.
          const c1 = dbfs(reference.subarray(at, at + k)) < SPEECH_DBFS ? undefined : corrAtLag(reference, at, k, received, head.lag);
          const c2 = dbfs(reference.subarray(at + k, at + w)) < SPEECH_DBFS ? undefined : corrAtLag(reference, at + k, w - k, received, tail.lag);
          const corr = Math.min(c1 ?? c2 ?? 0, c2 ?? c1 ?? 0);
          if (corr >= minCorr && (!m.found || corr > m.corr)) Object.assign(m, { lag: head.lag, lagEnd: tail.lag, corr, found: true, split: true, splitAt: k });
        }
      }
    }
    windows.push(m);
  }

  let outOfOrder = 0;
  let prev: WindowMatch | undefined;
  for (const m of windows.filter((x) => x.found)) {
    if (prev) {
      const moved = m.lag - prev.lagEnd;
      const allowed = step * Math.max(1, Math.round((m.at - prev.at) / w));
      if (Math.abs(moved) > allowed && !(moved > 0 && moved <= allowed + p.inserted)) outOfOrder++;
    }
    prev = m;
  }

  let longest = { len: 0, at: 0 };
  let run: { from: number; to: number } | undefined;
  for (const m of [...windows, undefined]) {
    if (m && !m.found) {
      run = { from: run?.from ?? m.at, to: m.at + w };
      continue;
    }
    if (run && run.to - run.from > longest.len) longest = { len: run.to - run.from, at: run.from };
    run = undefined;
  }

  let er = 0;
  let ex = 0;
  for (const m of windows.filter((x) => x.found)) {
    const h = m.splitAt ?? Math.floor(w / 2);
    er += energy(reference, m.at, w);
    ex += energy(received, m.at + m.lag, h) + energy(received, m.at + h + m.lagEnd, w - h);
  }
  const corrs = windows.map((m) => m.corr).sort((a, b) => a - b);
  return {
    rate,
    windowMs,
    minCorr,
    lag,
    windows,
    coverage: windows.length ? windows.filter((m) => m.found).length / windows.length : 0,
    longestGapMs: (longest.len * 1000) / rate,
    gapAtMs: (longest.at * 1000) / rate,
    outOfOrder,
    slips: windows.filter((m) => m.split).length,
    levelDb: er > 0 && ex > 0 ? 10 * Math.log10(ex / er) : -Infinity,
    medianCorr: corrs[Math.floor(corrs.length / 2)] ?? 0,
  };
}

/** One line for a diagnostic or a failure. */
export function describeMatch(m: ReferenceMatch): string {
  const found = m.windows.filter((x) => x.found).length;
  const s = (v: number): string => (v / 1000).toFixed(2);
  return (
    `${(m.coverage * 100).toFixed(0)}% of the reference's speech found (${found}/${m.windows.length} windows of ${m.windowMs} ms at correlation >= ${m.minCorr}), ` +
    `longest gap ${m.longestGapMs.toFixed(0)} ms${m.longestGapMs ? ` from ${s(m.gapAtMs)} s` : ''}, ${m.outOfOrder} out of order, ${m.slips} split by a slip, ` +
    `level ${m.levelDb.toFixed(1)} dB, median correlation ${m.medianCorr.toFixed(3)}, lag ${((m.lag * 1000) / m.rate).toFixed(1)} ms; ` +
    `windows: ${m.windows.map((x) => `${x.corr.toFixed(2)}${x.found ? (x.split ? '/' : '') : '!'}`).join(' ')}; window lags (ms): ${lagRuns(m)}`
  );
}

/** Found windows' lags as runs, "0 x3, 20 x21": where the audio slipped, and by how much. */
function lagRuns(m: ReferenceMatch): string {
  const runs: { ms: number; n: number }[] = [];
  for (const lag of m.windows.filter((x) => x.found).flatMap((x) => (x.split ? [x.lag, x.lagEnd] : [x.lag]))) {
    const ms = Math.round((lag * 10000) / m.rate) / 10;
    if (runs.at(-1)?.ms === ms) runs.at(-1)!.n++;
    else runs.push({ ms, n: 1 });
  }
  return runs.map((r) => `${r.ms} x${r.n}`).join(', ') || 'none';
}

/** Throws, saying what is missing, unless `received` holds the whole reference in order. */
export function assertHoldsReference(received: Int16Array, reference: Int16Array, rate: number, opts: HoldOptions): ReferenceMatch {
  return assertMatchHolds(matchReference(received, reference, rate, opts), opts);
}

/** assertHoldsReference on a match already made (to report it before checking it). */
export function assertMatchHolds(m: ReferenceMatch, opts: HoldOptions): ReferenceMatch {
  const minCoverage = opts.minCoverage ?? 1;
  const maxGapMs = opts.maxGapMs ?? 0;
  const [lo, hi] = opts.levelDb ?? [-6, 3];
  const wrong: string[] = [];
  if (m.windows.length === 0) wrong.push('the reference holds no speech');
  if (m.coverage < minCoverage) wrong.push(`coverage below ${minCoverage}`);
  if (m.longestGapMs > maxGapMs) wrong.push(`a gap longer than ${maxGapMs} ms`);
  if (m.outOfOrder > 0) wrong.push('windows out of order');
  if (!(m.levelDb >= lo && m.levelDb <= hi)) wrong.push(`level outside [${lo}, ${hi}] dB`);
  if (wrong.length) throw new Error(`${opts.what} does not hold the whole reference (${wrong.join('; ')}): ${describeMatch(m)}`);
  return m;
}

/** Tiles the reference; a tail of more than a quarter window gets a last window of its own. */
function windowStarts(length: number, w: number): number[] {
  const starts: number[] = [];
  for (let at = 0; at + w <= length; at += w) starts.push(at);
  if (length % w > w / 4 && length > w) starts.push(length - w);
  return starts;
}

/** Samples with running energies, and a copy averaged over every `d` for coarse searches. */
/** Normalised correlation of reference[from, from + n) with received[from + lag, ...). */
function corrAtLag(reference: Int16Array, from: number, n: number, received: Int16Array, lag: number): number {
  let xy = 0;
  let xx = 0;
  let yy = 0;
  for (let i = from; i < from + n; i++) {
    const x = reference[i]!;
    const j = i + lag;
    const y = j >= 0 && j < received.length ? received[j]! : 0;
    xy += x * y;
    xx += x * x;
    yy += y * y;
  }
  return xx > 0 && yy > 0 ? xy / Math.sqrt(xx * yy) : 0;
}

class Signal {
  readonly x: Int16Array;
  readonly cum: Float64Array;
  readonly coarse: Float64Array;
  readonly coarseCum: Float64Array;
  readonly d: number;

  constructor(x: Int16Array, d: number) {
    this.x = x;
    this.d = d;
    this.cum = cumulativeEnergy(x);
    this.coarse = new Float64Array(Math.floor(x.length / d));
    for (let i = 0; i < this.coarse.length; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += x[i * d + j]!;
      this.coarse[i] = s / d;
    }
    this.coarseCum = cumulativeEnergy(this.coarse);
  }
}

function cumulativeEnergy(x: ArrayLike<number>): Float64Array {
  const c = new Float64Array(x.length + 1);
  for (let i = 0; i < x.length; i++) c[i + 1] = c[i]! + x[i]! * x[i]!;
  return c;
}

/**
 * Correlation of all of `a` with `b` from `offset`: normalised by the energy of the whole of
 * `a` and of the part of `b` it overlaps, so that the part of `a` outside `b` counts as
 * missed, not as absent.
 */
function corrAt(a: ArrayLike<number>, aEnergy: number, b: ArrayLike<number>, bCum: Float64Array, offset: number): number {
  const from = Math.max(0, -offset);
  const to = Math.min(a.length, b.length - offset);
  if (to <= from) return 0;
  let ab = 0;
  for (let i = from; i < to; i++) ab += a[i]! * b[i + offset]!;
  const bb = bCum[to + offset]! - bCum[from + offset]!;
  return aEnergy > 0 && bb > 0 ? ab / Math.sqrt(aEnergy * bb) : 0;
}

/**
 * The best alignments of the whole reference anywhere in (or partly outside) the received
 * audio, at least a second apart.
 */
function candidateLags(rec: Signal, ref: Signal, rate: number, count = 3): number[] {
  const e = ref.coarseCum[ref.coarse.length]!;
  const scores: { c: number; lag: number }[] = [];
  for (let lag = -ref.coarse.length + 1; lag < rec.coarse.length; lag++) scores.push({ c: corrAt(ref.coarse, e, rec.coarse, rec.coarseCum, lag), lag });
  scores.sort((a, b) => b.c - a.c);
  const apart = rate / ref.d;
  const picked: number[] = [];
  for (const { lag } of scores) {
    if (picked.length === count) break;
    if (picked.every((p) => Math.abs(p - lag) >= apart)) picked.push(lag);
  }
  return picked.map((lag) => locateFine(rec, ref, lag * ref.d - 2 * ref.d, lag * ref.d + 2 * ref.d).lag);
}

/**
 * Best offset of `win` in `rec` within [lo, hi]: coarse on the averaged copies, then every
 * offset around the best few coarse peaks (speech averaged down can peak at the wrong one).
 */
function locate(rec: Signal, win: Signal, lo: number, hi: number): { lag: number; corr: number } {
  const e = win.coarseCum[win.coarse.length]!;
  const coarse: { lag: number; c: number }[] = [];
  for (let lag = Math.floor(lo / win.d); lag <= Math.ceil(hi / win.d); lag++) coarse.push({ lag, c: corrAt(win.coarse, e, rec.coarse, rec.coarseCum, lag) });
  coarse.sort((x, y) => y.c - x.c);
  const picked: number[] = [];
  for (const { lag } of coarse) {
    if (picked.length === 8) break;
    if (picked.every((p) => Math.abs(p - lag) > 2)) picked.push(lag);
  }
  let best = { lag: lo, corr: 0 };
  for (const p of picked) {
    const f = locateFine(rec, win, Math.max(lo, (p - 2) * win.d), Math.min(hi, (p + 2) * win.d));
    if (f.corr > best.corr) best = f;
  }
  return best;
}

function locateFine(rec: Signal, win: Signal, lo: number, hi: number): { lag: number; corr: number } {
  const e = win.cum[win.x.length]!;
  let best = { lag: lo, corr: -2 };
  for (let lag = lo; lag <= hi; lag++) {
    const c = corrAt(win.x, e, rec.x, rec.cum, lag);
    if (c > best.corr) best = { lag, corr: c };
  }
  return best;
}

function energy(x: Int16Array, from: number, n: number): number {
  let e = 0;
  for (let i = Math.max(0, from); i < from + n && i < x.length; i++) e += x[i]! * x[i]!;
  return e;
}

function dbfs(x: Int16Array): number {
  return 10 * Math.log10(energy(x, 0, x.length) / Math.max(1, x.length) / 32768 ** 2 + 1e-12);
}
