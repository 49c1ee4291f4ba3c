import { Counter, Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../metrics/metrics.ts';
import type { PromptCache } from './prompt-cache.ts';

export function registerPromptCacheMetrics(cache: PromptCache, registry: Registry): void {
  const registers = [registry];
  new Counter({
    name: `${METRIC_PREFIX}prompt_cache_hits_total`,
    help: 'Prompts served from the decoded-prompt cache',
    registers,
    collect() {
      this.reset();
      this.inc(cache.hits);
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}prompt_cache_misses_total`,
    help: 'Prompts that had to be decoded',
    registers,
    collect() {
      this.reset();
      this.inc(cache.misses);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}prompt_cache_bytes`,
    help: 'Memory held by decoded prompts',
    registers,
    collect() {
      this.set(cache.bytes);
    },
  });
}
