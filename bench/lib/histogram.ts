/** Buckets of a Prometheus histogram in an exposition: [upper bound, cumulative count]. */
export function scrapeBuckets(text: string, name: string): [number, number][] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}_bucket`))
    .map((l) => {
      const le = /le="([^"]+)"/.exec(l)![1]!;
      return [le === '+Inf' ? Infinity : Number(le), Number(l.split(' ').pop())] as [number, number];
    });
}

/** A quantile of what was observed between two scrapes, interpolated inside its bucket. */
export function histogramQuantile(before: [number, number][], after: [number, number][], q: number): number {
  const d = after.map(([le, c], i) => [le, c - (before[i]?.[1] ?? 0)] as [number, number]);
  const total = d.at(-1)?.[1] ?? 0;
  if (total === 0) return NaN;
  const target = total * q;
  let prevLe = 0;
  let prevC = 0;
  for (const [le, c] of d) {
    if (c >= target) return le === Infinity ? prevLe : prevLe + ((target - prevC) / Math.max(1, c - prevC)) * (le - prevLe);
    prevLe = le;
    prevC = c;
  }
  return NaN;
}

/** The sum of every sample of a metric in an exposition whose labels include `labels` (e.g. 'kind="major"'). */
export function scrapeValue(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const l of text.split('\n')) {
    if (!l.startsWith(name) || (l[name.length] !== ' ' && l[name.length] !== '{')) continue;
    if (labels && !l.includes(labels)) continue;
    sum += Number(l.split(' ').pop());
  }
  return sum;
}
