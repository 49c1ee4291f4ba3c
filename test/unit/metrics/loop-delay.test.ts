import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { replaceLoopDelayGauges } from '../../../src/metrics/loop-delay.ts';

function value(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  assert.ok(line, `${name} is not exported`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

function registry(replace: boolean, labels?: Record<string, string>): Registry {
  const r = new Registry();
  collectDefaultMetrics({ register: r, prefix: 't_', ...(labels ? { labels } : {}) });
  if (replace) replaceLoopDelayGauges(r, 't_', labels);
  return r;
}

test("prom-client's own gauges read the probe timer's 10 ms wait on an idle loop; these read the delay", async () => {
  const theirs = registry(false);
  const ours = registry(true);
  await theirs.metrics();
  await ours.metrics();
  await sleep(400);
  const a = await theirs.metrics();
  const b = await ours.metrics();
  assert.ok(value(a, 't_nodejs_eventloop_lag_p50_seconds') >= 0.009, a);
  assert.ok(value(b, 't_nodejs_eventloop_lag_p50_seconds') < 0.004, b);
  assert.ok(value(b, 't_nodejs_eventloop_lag_min_seconds') < 0.004);
});

test('a loop held for 60 ms reads a maximum of about 60 ms, and the next window starts afresh', async () => {
  const r = registry(true);
  await r.metrics();
  await sleep(50);
  const until = performance.now() + 60;
  while (performance.now() < until);
  await sleep(50);
  const held = await r.metrics();
  const max = value(held, 't_nodejs_eventloop_lag_max_seconds');
  assert.ok(max >= 0.045 && max < 0.5, `max ${max}`);
  await sleep(300);
  const after = await r.metrics();
  assert.ok(value(after, 't_nodejs_eventloop_lag_max_seconds') < 0.03, after);
});

test('each figure is exported once, with the labels given', async () => {
  const text = await registry(true, { shard: 'supervisor' }).metrics();
  for (const s of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']) {
    const lines = text.split('\n').filter((l) => l.startsWith(`t_nodejs_eventloop_lag_${s}_seconds`));
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /\{shard="supervisor"\} /);
  }
});
