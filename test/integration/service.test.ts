import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, runToExit, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually, metricValue } from '../helpers/grpc-client.ts';
import { RtpPeer } from '../helpers/rtp-peer.ts';
import { tone } from '../helpers/audio.ts';

const REQUIRED_FIELDS = ['timestamp', 'level', 'service', 'message', 'trace_id', 'call_id'];

describe('the running service', () => {
  let svc: RunningService;
  let client: TestClient;

  before(async () => {
    svc = await startService({ env: { MEDIASOUP_NUM_WORKERS: '2' } });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    client.close();
    await svc.stop('SIGKILL');
  });

  test('every stdout line is a JSON object with the platform fields', () => {
    assert.ok(svc.lines.length >= 3);
    for (const line of svc.lines) {
      for (const f of REQUIRED_FIELDS) assert.ok(f in line, `${f} in ${JSON.stringify(line)}`);
      assert.equal(line.service, 'media-service');
      assert.equal(line.schema_v, '1.0.0');
      assert.match(line.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal((line.resource as Record<string, string>)['service.env'], 'production');
    }
  });

  test('x-trace-id becomes the trace_id of every line of the request and is echoed back', async () => {
    const traceId = `trace-${Date.now()}`;
    const res = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: 'call-abc' }, { 'x-trace-id': traceId });
    assert.ok(res.response!.rtp_port > 0);
    await client.media_('ReleasePort', { rtp_port: res.response!.rtp_port }, { 'x-trace-id': traceId });
    assert.equal(res.metadata?.get('x-trace-id')[0], traceId);
    const line = await svc.waitForLog((l) => l.trace_id === traceId && l.event === 'GRPC_REQUEST');
    assert.equal(line.call_id, 'call-abc');
    const traced = svc.lines.filter((l) => l.trace_id === traceId);
    assert.ok(traced.length >= 1);
    for (const l of traced) assert.equal(l.call_id, 'call-abc', JSON.stringify(l));
    assert.equal((line.attributes as Record<string, string>)['rpc.method'], 'AllocatePort');
  });

  test('a request without x-trace-id gets a generated one, echoed back', async () => {
    const res = await client.media_('StopRecording', { server_rtp_port: 19998 });
    const generated = res.metadata?.get('x-trace-id')[0];
    assert.match(String(generated), /^[0-9a-f-]{36}$/);
    await svc.waitForLog((l) => l.trace_id === generated && l.event === 'GRPC_REQUEST');
  });

  test('a request for a port with no call answers NOT_FOUND with a clear message', async () => {
    const res = await client.media_('StopRecording', { server_rtp_port: 19998 });
    assert.equal(res.error?.code, grpc.status.NOT_FOUND);
    assert.match(res.error?.details ?? '', /no call session on port 19998/);
  });

  test('invalid requests get INVALID_ARGUMENT naming the field', async () => {
    const a = await client.media_('AllocatePort', { call_id: '' });
    assert.equal(a.error?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(a.error?.details ?? '', /call_id: call_id is required/);
    const b = await client.media_('ReleasePort', { rtp_port: 0 });
    assert.equal(b.error?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(b.error?.details ?? '', /rtp_port is required/);
  });

  test('/metrics exposes the platform metrics and counts requests by method and code', async () => {
    const before = await (await fetch(svc.url('/metrics'))).text();
    const count = (t: string) => metricValue(t, 'sentiric_media_grpc_requests_total', { method: 'ReleasePort', code: 'INVALID_ARGUMENT' }) ?? 0;
    await client.media_('ReleasePort', { rtp_port: 0 });
    await client.media_('ReleasePort', { rtp_port: 0 });
    const text = await (await fetch(svc.url('/metrics'))).text();
    assert.equal(count(text) - count(before), 2);
    assert.equal(metricValue(text, 'sentiric_media_active_sessions'), 0);
    assert.equal(metricValue(text, 'sentiric_media_workers_alive'), 2);
    assert.ok((metricValue(text, 'sentiric_media_worker_cpu_seconds', { worker: '0' }) ?? -1) >= 0);
    assert.ok((metricValue(text, 'sentiric_media_worker_max_rss_bytes', { worker: '1' }) ?? 0) > 1_000_000);
    assert.ok((metricValue(text, 'sentiric_media_grpc_request_duration_seconds_count', { method: 'ReleasePort' }) ?? 0) >= 2);
    assert.ok((metricValue(text, 'sentiric_media_process_resident_memory_bytes') ?? 0) > 0);
  });

  test('/healthz, /readyz and grpc.health.v1 report serving', async () => {
    assert.equal((await fetch(svc.url('/healthz'))).status, 200);
    const ready = await fetch(svc.url('/readyz'));
    assert.equal(ready.status, 200);
    assert.deepEqual(((await ready.json()) as { checks: unknown }).checks, { serving: true, workers: true, draining: true });
    assert.equal((await client.check()).response?.status, 'SERVING');
    assert.equal((await client.check('sentiric.media.v1.MediaService')).response?.status, 'SERVING');
    assert.equal((await client.check('no.such.Service')).error?.code, grpc.status.NOT_FOUND);
  });

  test('a killed worker is logged, counted and replaced while health checks keep passing', async () => {
    const pids = execFileSync('pgrep', ['-P', String(svc.proc.pid), '-f', 'mediasoup-worker']).toString().trim().split('\n').map(Number);
    assert.equal(pids.length, 2);
    let checks = 0;
    let failures = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const r = await client.check();
        checks++;
        if (r.response?.status !== 'SERVING') failures++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    process.kill(pids[0]!, 'SIGKILL');
    const died = await svc.waitForLog((l) => l.event === 'WORKER_DIED');
    assert.equal(died.level, 'error');
    await svc.waitForLog((l) => l.event === 'WORKER_REPLACED');
    // mediasoup's own log lines arrive in the same JSON stream.
    const msLine = await svc.waitForLog((l) => l.event === 'MEDIASOUP_ERROR' && /died/.test(l.message));
    assert.equal(msLine.level, 'error');
    await eventually(async () => {
      const t = await (await fetch(svc.url('/metrics'))).text();
      return metricValue(t, 'sentiric_media_workers_alive') === 2 && metricValue(t, 'sentiric_media_worker_deaths_total') === 1;
    });
    // A replacement can take less than one poll: keep polling past it.
    await eventually(() => checks >= 5, 5000);
    polling = false;
    await poller;
    assert.equal(failures, 0);
    const after = execFileSync('pgrep', ['-P', String(svc.proc.pid), '-f', 'mediasoup-worker']).toString().trim().split('\n').map(Number);
    assert.equal(after.length, 2);
    assert.ok(!after.includes(pids[0]!));
  });
});

test('nobody reading its log does not stop a call: prompts keep their cadence, requests are answered, every line comes out later', async (t) => {
  const svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '36100', RTP_SERVICE_PORT_MAX: '36199', RTP_SERVICE_PORT_QUARANTINE_SECONDS: '0' } });
  const client = new TestClient(svc.grpcPort);
  const phone = await RtpPeer.open();
  try {
    const { rtp_port: port } = (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: `unread-log-${process.pid}` })).response!;
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: phone.address });
    const linesBefore = svc.lines.length;
    svc.readStdout(false);
    const prompt = Buffer.from(tone(500, 3000, 8000).buffer).toString('base64');
    const played = await client.media_('PlayAudio', { audio_uri: `data:audio/pcm;base64,${prompt}`, server_rtp_port: port });
    assert.equal(played.error, undefined, played.error?.details);
    // Some 2,400 lines while the prompt plays, far more than a pipe holds (64 kB): a service that
    // waited for its reader would stop sending and stop answering here.
    let answered = 0;
    for (let k = 0; k < 400; k++) {
      const r = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: `log-flood-${process.pid}-${k}` });
      assert.equal(r.error, undefined, r.error?.details);
      await client.media_('ReleasePort', { rtp_port: r.response!.rtp_port });
      answered++;
    }
    await eventually(() => phone.received.length >= 150, 5000);
    const at = phone.received.map((p) => p.at);
    const gaps = at.slice(1).map((x, i) => x - at[i]!).sort((a, b) => a - b);
    t.diagnostic(`${answered} allocations answered with the log unread; ${phone.received.length} prompt packets, interval p50 ${gaps[gaps.length >> 1]!.toFixed(1)} ms, max ${gaps.at(-1)!.toFixed(1)} ms`);
    assert.ok(gaps.at(-1)! < 100, `the prompt stopped for ${gaps.at(-1)!.toFixed(0)} ms while nobody read the log`);
    assert.equal(svc.lines.length, linesBefore, 'the log was read after all: the test proves nothing');
    svc.readStdout(true);
    // Nothing lost, in order: each flood call's lines arrive once the log is read again.
    await eventually(() => svc.lines.filter((l) => String(l.call_id ?? '').startsWith(`log-flood-${process.pid}-`) && l.event === 'SESSION_CLOSED').length === 400, 10_000);
    const text = await (await fetch(svc.url('/metrics'))).text();
    assert.equal(metricValue(text, 'sentiric_media_log_lines_dropped_total'), 0);
  } finally {
    svc.readStdout(true);
    phone.close();
    client.close();
    await svc.stop('SIGKILL');
  }
});

test('SIGTERM drains and exits 0', async () => {
  const svc = await startService();
  const client = new TestClient(svc.grpcPort);
  assert.equal((await client.check()).response?.status, 'SERVING');
  const code = await svc.stop('SIGTERM');
  client.close();
  assert.equal(code, 0);
  assert.ok(svc.lines.some((l) => l.event === 'SERVICE_STOPPING'));
  assert.ok(svc.lines.some((l) => l.event === 'SERVICE_STOPPED'));
});

test('a bad configuration value stops start-up naming the key', async () => {
  const r = await runToExit({ MEDIA_SERVICE_GRPC_PORT: '99999' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /grpc\.port/);
});

test('the service starts from a TOML file alone and from a .env file alone', async () => {
  for (const [name, body] of [
    ['config.toml', '[service]\nenv = "production"\n[grpc]\nport = 0\nlisten_address = "127.0.0.1"\n[http]\nport = 0\n[mediasoup]\nnum_workers = 1\n[log]\nlevel = "info"\n'],
    ['.env', 'ENV=production\nMEDIA_SERVICE_GRPC_PORT=0\nMEDIA_SERVICE_METRICS_PORT=0\nMEDIASOUP_NUM_WORKERS=1\nLOG_LEVEL=info\n'],
  ] as const) {
    const cwd = mkdtempSync(join(tmpdir(), 'svc-cfg-'));
    writeFileSync(join(cwd, name), body);
    // Only PATH/HOME from the environment: every setting comes from the file.
    const svc = await startService({ cwd, testDefaults: false }).catch((e: unknown) => {
      throw new Error(`${name}: ${String(e)}`);
    });
    const client = new TestClient(svc.grpcPort);
    assert.equal((await client.check()).response?.status, 'SERVING', name);
    client.close();
    assert.equal(await svc.stop(), 0);
  }
});
