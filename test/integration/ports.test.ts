import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually, metricValue } from '../helpers/grpc-client.ts';
import { RtpPeer } from '../helpers/rtp-peer.ts';

/** UDP sockets the process holds: its socket fds whose inode is listed in /proc/net/udp. */
const socketsOf = (pid: number): number => {
  const udpInodes = new Set(
    ['/proc/net/udp', '/proc/net/udp6'].flatMap((f) => readFileSync(f, 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/)[9]).filter(Boolean)),
  );
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      return m !== null && udpInodes.has(m[1]!);
    } catch {
      return false;
    }
  }).length;
};

describe('the RTP port pool', () => {
  let svc: RunningService;
  let client: TestClient;

  before(async () => {
    // Five even ports; a released port rests 1 s.
    svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '33000', RTP_SERVICE_PORT_MAX: '33009', RTP_SERVICE_PORT_QUARANTINE_SECONDS: '1', LOG_LEVEL: 'info' } });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    client.close();
    await svc.stop('SIGKILL');
  });

  test('allocate until exhausted, then RESOURCE_EXHAUSTED; released ports return after quarantine', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 5; i++) ports.push((await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: `pool-${i}` })).response!.rtp_port);
    assert.deepEqual([...ports].sort(), [33000, 33002, 33004, 33006, 33008]);
    const full = await client.media_('AllocatePort', { call_id: 'pool-x' });
    assert.equal(full.error?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(full.error!.details, /no free RTP port/);

    await client.media_('ReleasePort', { rtp_port: ports[2] });
    const m = await (await fetch(svc.url('/metrics'))).text();
    assert.equal(metricValue(m, 'sentiric_media_rtp_ports_quarantined'), 1);
    assert.equal(metricValue(m, 'sentiric_media_rtp_ports_in_use'), 4);
    const resting = await client.media_('AllocatePort', { call_id: 'pool-y' });
    assert.equal(resting.error?.code, grpc.status.RESOURCE_EXHAUSTED, 'a quarantined port is not handed out');
    const reused = await eventually(async () => (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: 'pool-y' })).response?.rtp_port, 3000, 100);
    assert.equal(reused, ports[2]);
    for (const p of [...ports.filter((p) => p !== ports[2]), reused]) await client.media_('ReleasePort', { rtp_port: p });
  });
});

describe('allocate/release cycles', () => {
  let svc: RunningService;
  let client: TestClient;

  before(async () => {
    svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '33200', RTP_SERVICE_PORT_MAX: '33299', RTP_SERVICE_PORT_QUARANTINE_SECONDS: '0', LOG_LEVEL: 'info' } });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    client.close();
    await svc.stop('SIGKILL');
  });

  test('1,000 allocate/release cycles leave no socket, timer or session behind', async () => {
    const res = async (): Promise<{ sessions: number; resources: Record<string, number> }> => (await fetch(svc.url('/debug/resources'))).json() as never;
    // The test's own connections (gRPC, HTTP) exist before the snapshot, not because of it.
    await client.check();
    await res();
    const before = await res();
    const socketsBefore = socketsOf(svc.proc.pid!);
    for (let i = 0; i < 1000; i++) {
      const a = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: `cycle-${i}` });
      assert.equal(a.error, undefined, a.error?.details);
      // Some calls play and echo, so their parts are set up and torn down too.
      if (i % 10 === 0) await client.media_('PlayAudio', { audio_uri: 'control://enable_echo', server_rtp_port: a.response!.rtp_port, rtp_target_addr: '127.0.0.1:9' });
      await client.media_('ReleasePort', { rtp_port: a.response!.rtp_port });
    }
    const after = await res();
    assert.equal(after.sessions, 0);
    assert.equal(after.resources.UDPWrap ?? 0, before.resources.UDPWrap ?? 0, JSON.stringify(after.resources));
    assert.equal(after.resources.Timeout ?? 0, before.resources.Timeout ?? 0, JSON.stringify(after.resources));
    assert.equal(socketsOf(svc.proc.pid!), socketsBefore, 'UDP sockets of the service process');
    const m = await (await fetch(svc.url('/metrics'))).text();
    assert.equal(metricValue(m, 'sentiric_media_active_sessions'), 0);
    assert.equal(metricValue(m, 'sentiric_media_sessions_closed_total', { reason: 'released' })! >= 1000, true);
  });
});

describe('inactivity', () => {
  test('a session without RTP is closed after the timeout and reported (log, event, metric)', async () => {
    const svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '33100', RTP_SERVICE_PORT_MAX: '33199', RTP_SESSION_INACTIVITY_TIMEOUT_SECONDS: '1' } });
    const client = new TestClient(svc.grpcPort);
    try {
      const quiet = (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: 'quiet' })).response!.rtp_port;
      const talking = (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: 'talking' })).response!.rtp_port;
      const peer = await RtpPeer.open();
      const sending = peer.sendPcm(new Int16Array(160 * 125), talking);
      const line = await svc.waitForLog((l) => l.event === 'SESSION_INACTIVE', 5000);
      assert.equal(line.call_id, 'quiet');
      assert.equal(line.level, 'warn');
      await svc.waitForLog((l) => l.event === 'PLATFORM_EVENT' && (l.attributes as Record<string, string>)['event.type'] === 'call.media.session.timeout');
      const m = await (await fetch(svc.url('/metrics'))).text();
      assert.equal(metricValue(m, 'sentiric_media_session_timeouts_total'), 1);
      assert.equal(metricValue(m, 'sentiric_media_active_sessions'), 1, 'the call that sends RTP stays');
      const again = await client.media_('PlayAudio', { audio_uri: 'control://enable_echo', server_rtp_port: quiet });
      assert.equal(again.error?.code, grpc.status.NOT_FOUND);
      await sending;
      peer.close();
    } finally {
      client.close();
      await svc.stop('SIGKILL');
    }
  });
});
