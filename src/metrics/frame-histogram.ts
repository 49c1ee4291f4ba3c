import type { Histogram, MetricValueWithName, Registry } from 'prom-client';

/** What prom-client's registry reads from a metric when it scrapes. */
export interface ScrapedMetric {
  name: string;
  help: string;
  type: 'histogram';
  values: MetricValueWithName<string>[];
  aggregator: 'sum';
}

/**
 * A histogram without labels for what is observed once per media frame: `observe` is a
 * bucket search and three adds. prom-client's own builds a closure, hashes the labels and
 * validates the value on every call (0.37 us in a tight loop, 1.3% of the service's busy
 * time at 200 AI calls for the fork latency alone). Scraped exactly as prom-client's.
 */
export class FrameHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #bounds: Float64Array;
  /** One count per bucket (not cumulative), the last for values above every bound. */
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(opts: { name: string; help: string; buckets: readonly number[]; registers: Registry[] }) {
    const sorted = [...opts.buckets].sort((a, b) => a - b);
    this.name = opts.name;
    this.help = opts.help;
    this.#bounds = Float64Array.from(sorted);
    this.#counts = new Float64Array(sorted.length + 1);
    // The registry takes any object with prom-client's metric shape (name, get, reset).
    for (const r of opts.registers) r.registerMetric(this as unknown as Histogram);
  }

  observe(value: number): void {
    const b = this.#bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.#counts[i]!++;
    this.#sum += value;
    this.#count++;
  }

  reset(): void {
    this.#counts.fill(0);
    this.#sum = 0;
    this.#count = 0;
  }

  get(): Promise<ScrapedMetric> {
    const values: MetricValueWithName<string>[] = [];
    let acc = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      acc += this.#counts[i]!;
      values.push({ metricName: `${this.name}_bucket`, labels: { le: this.#bounds[i]! }, value: acc });
    }
    values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf' }, value: this.#count });
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.#sum });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: this.#count });
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}
