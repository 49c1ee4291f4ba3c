import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, startService, type RunningService } from '../helpers/service.ts';

const RULES = join(REPO_ROOT, 'ops/prometheus/alerts.yml');
const DASHBOARD = join(REPO_ROOT, 'ops/grafana/dashboard.json');
const HISTOGRAM_SUFFIX = /_(bucket|sum|count)$/;

/** Every sentiric_media_* name an expression reads. */
const namesIn = (expr: string): string[] => [...expr.matchAll(/\bsentiric_media_[a-z0-9_]+/g)].map((m) => m[0]);

interface Panel { title?: string; type: string; targets?: { expr: string }[]; panels?: Panel[] }
const dashboardExprs = (): { title: string; expr: string }[] => {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
  const all: Panel[] = d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  return all.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title ?? '', expr: t.expr })));
};

describe('operations kit: alert rules and the dashboard over the service’s own metrics', () => {
  let svc: RunningService;
  /** Metric name -> type, as an instance of two shards exports them (supervisor and shards merged). */
  const exported = new Map<string, string>();

  before(async () => {
    svc = await startService({ env: { MEDIA_SHARDS: '2', MEDIASOUP_NUM_WORKERS: '2', RTP_SERVICE_PORT_MIN: '37600', RTP_SERVICE_PORT_MAX: '37799', LOG_LEVEL: 'info' } });
    const text = await (await fetch(svc.url('/metrics'))).text();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) exported.set(m[1]!, m[2]!);
  });
  after(async () => {
    await svc?.stop('SIGKILL');
  });

  const known = (name: string): boolean => exported.has(name) || (HISTOGRAM_SUFFIX.test(name) && exported.get(name.replace(HISTOGRAM_SUFFIX, '')) === 'histogram');

  test('promtool accepts the alert rules', () => {
    const out = execFileSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    assert.match(out, /SUCCESS: \d+ rules found/);
  });

  test('every alert names only metrics the service exports, and covers what on-call needs', () => {
    const rules = readFileSync(RULES, 'utf8');
    const used = new Set(namesIn(rules));
    assert.ok(used.size >= 10, `only ${used.size} metrics in the rules`);
    for (const n of used) assert.ok(known(n), `the alert rules read ${n}, which the service does not export`);
    for (const need of [
      'nodejs_eventloop_lag_p99_seconds',
      'clock_late_ticks_total',
      'rtp_packets_lost_total',
      'fork_frames_dropped_total',
      'recording_uploads_total',
      'recording_uploads_pending',
      'worker_deaths_total',
      'rtp_ports_available',
      'port_allocation_failures_total',
    ]) {
      assert.ok(used.has(`sentiric_media_${need}`), `no alert on sentiric_media_${need}`);
    }
  });

  test('every dashboard expression is valid PromQL over exported metrics', () => {
    const exprs = dashboardExprs();
    assert.ok(exprs.length >= 20, `${exprs.length} expressions`);
    for (const { title, expr } of exprs) {
      const names = namesIn(expr);
      assert.ok(names.length > 0, `panel "${title}" reads no metric of the service`);
      for (const n of names) assert.ok(known(n), `panel "${title}" reads ${n}, which the service does not export`);
    }
    // promtool parses each one as a recording rule's expression.
    const dir = mkdtempSync(join(tmpdir(), 'dash-'));
    const file = join(dir, 'dashboard-rules.yml');
    const rules = exprs.map((e, i) => `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(e.expr)}`).join('\n');
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
    const out = execFileSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    assert.match(out, new RegExp(`SUCCESS: ${exprs.length} rules found`));
  });
});
