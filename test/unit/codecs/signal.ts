/** Signal generation and measurement shared by the codec tests. */

export function sine(freq: number, rate: number, length: number, amplitude: number, phase = 0): Int16Array {
  const out = new Int16Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * freq * i) / rate + phase));
  return out;
}

/** Deterministic white-ish noise (xorshift), so failures reproduce. */
export function noise(length: number, amplitude: number, seed = 0x9e3779b9): Int16Array {
  const out = new Int16Array(length);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = Math.round(((s / 0xffffffff) * 2 - 1) * amplitude);
  }
  return out;
}

export interface SineFit {
  amplitude: number;
  /** Root mean square of what the fitted sine (plus DC) does not explain. */
  residualRms: number;
  /** 20 log10 of fitted sine RMS over residual RMS. */
  snrDb: number;
}

/** Least-squares fit of a*cos + b*sin + c at `freq` over x[from, to). */
export function fitSine(x: ArrayLike<number>, freq: number, rate: number, from = 0, to = x.length): SineFit {
  let scc = 0, sss = 0, ssc = 0, sc = 0, ss = 0, n = 0, xc = 0, xs = 0, x1 = 0;
  for (let i = from; i < to; i++) {
    const w = (2 * Math.PI * freq * i) / rate;
    const c = Math.cos(w);
    const s = Math.sin(w);
    const v = x[i]!;
    scc += c * c; sss += s * s; ssc += s * c; sc += c; ss += s; n++;
    xc += v * c; xs += v * s; x1 += v;
  }
  const [a, b, dc] = solve3(
    [[scc, ssc, sc], [ssc, sss, ss], [sc, ss, n]],
    [xc, xs, x1],
  );
  let res = 0;
  for (let i = from; i < to; i++) {
    const w = (2 * Math.PI * freq * i) / rate;
    const e = x[i]! - (a * Math.cos(w) + b * Math.sin(w) + dc);
    res += e * e;
  }
  const amplitude = Math.hypot(a, b);
  const residualRms = Math.sqrt(res / n);
  return { amplitude, residualRms, snrDb: 20 * Math.log10(amplitude / Math.SQRT2 / residualRms) };
}

function solve3(m: number[][], v: number[]): [number, number, number] {
  const a = m.map((row, i) => [...row, v[i]!]);
  for (let c = 0; c < 3; c++) {
    let p = c;
    for (let r = c + 1; r < 3; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[p]![c]!)) p = r;
    [a[c], a[p]] = [a[p]!, a[c]!];
    for (let r = 0; r < 3; r++) {
      if (r === c) continue;
      const f = a[r]![c]! / a[c]![c]!;
      for (let k = c; k < 4; k++) a[r]![k]! -= f * a[c]![k]!;
    }
  }
  return [a[0]![3]! / a[0]![0]!, a[1]![3]! / a[1]![1]!, a[2]![3]! / a[2]![2]!];
}

/** SNR in dB of `x` against a reference over [from, to). */
export function snrDb(x: ArrayLike<number>, reference: ArrayLike<number>, from = 0, to = reference.length): number {
  let sig = 0;
  let err = 0;
  for (let i = from; i < to; i++) {
    const r = reference[i]!;
    const e = x[i]! - r;
    sig += r * r;
    err += e * e;
  }
  return 10 * Math.log10(sig / err);
}

export function rms(x: ArrayLike<number>, from = 0, to = x.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s / (to - from));
}

export const db = (ratio: number): number => 20 * Math.log10(ratio);
