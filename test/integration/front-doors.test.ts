import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually, metricValue } from '../helpers/grpc-client.ts';
import { RtpPeer } from '../helpers/rtp-peer.ts';
import { tone } from '../helpers/audio.ts';
import { allocateCall, hearsBothWays, openFork } from '../helpers/ai-call.ts';

const RTP_MIN = 39200;
const RTP_MAX = 39399;
/** Two shards split 100 port pairs evenly: shard 1 starts here. */
const SHARD1_MIN = 39300;
const shardOf = (port: number): number => (port >= SHARD1_MIN ? 1 : 0);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Door {
  index: number;
  ready: boolean;
  pid: number | null;
  restarts: number;
  connections: number;
}

/**
 * Front-door processes: the supervisor accepts each client connection and hands it to one of
 * them, which relays its requests to the shards; the supervisor relays nothing itself.
 */
describe('an instance whose client connections are relayed by two front-door processes', () => {
  let svc: RunningService;
  /** Four platform clients, each on a connection of its own. */
  let clients: TestClient[] = [];
  const peers: RtpPeer[] = [];
  let n = 0;
  const newCallId = (): string => `doors-${process.pid}-${++n}@test`;
  const doors = async (): Promise<Door[]> => ((await (await fetch(svc.url('/debug/resources'))).json()) as { front_doors: Door[] }).front_doors;
  const allocate = (c: TestClient, id = newCallId()): Promise<{ id: string; port: number }> => allocateCall(c, id);
  const peer = async (): Promise<RtpPeer> => {
    const p = await RtpPeer.open();
    peers.push(p);
    return p;
  };
  const fork = openFork;

  before(async () => {
    svc = await startService({
      env: {
        MEDIA_SHARDS: '2',
        MEDIA_FRONT_DOORS: '2',
        MEDIASOUP_NUM_WORKERS: '2',
        RTP_SERVICE_PORT_MIN: String(RTP_MIN),
        RTP_SERVICE_PORT_MAX: String(RTP_MAX),
        RTP_SERVICE_PORT_QUARANTINE_SECONDS: '0',
        LOG_LEVEL: 'info',
        ADMISSION_MAX_CPU: '0',
        ADMISSION_MAX_LOOP_LAG_MS: '0',
        MEDIA_HANG_TIMEOUT_SECONDS: '2',
      },
    });
    // grpc-js shares one connection among clients of one address unless each keeps its own pool.
    clients = [0, 1, 2, 3].map(() => new TestClient(svc.grpcPort, undefined, { 'grpc.use_local_subchannel_pool': 1 }));
  });
  after(async () => {
    for (const p of peers) p.close();
    for (const c of clients) c.close();
    if (svc.proc.exitCode === null) await svc.stop('SIGKILL');
  });

  test('connections are spread over both; through each, prompts, forks, TTS and a bridge across shards work', async () => {
    const calls: { id: string; port: number; client: TestClient }[] = [];
    for (const c of clients) calls.push({ ...(await allocate(c)), client: c });
    const started = await doors();
    assert.deepEqual(
      started.map((d) => [d.index, d.ready, d.connections]),
      [
        [0, true, 2],
        [1, true, 2],
      ],
      'four connections, two for each front door',
    );
    for (const c of calls) await hearsBothWays(c.client, c, await peer());

    // A bridge of two shards' calls is answered by the supervisor: asked for by a front door.
    const spare = [...calls];
    for (let k = 0; k < 10 && new Set(spare.map((c) => shardOf(c.port))).size < 2; k++) spare.push({ ...(await allocate(clients[0]!)), client: clients[0]! });
    const a = spare.find((c) => shardOf(c.port) === 0);
    const b = spare.find((c) => shardOf(c.port) === 1);
    assert.ok(a && b, 'no calls on both shards');
    const bridged = await clients[1]!.media_<{ success: boolean }>('BridgeCalls', { server_rtp_port_a: a.port, server_rtp_port_b: b.port });
    assert.equal(bridged.error, undefined, bridged.error?.details);
    assert.equal(bridged.response?.success, true);
    const unbridged = await clients[2]!.media_('UnbridgeCalls', { server_rtp_port: a.port });
    assert.equal(unbridged.error, undefined, unbridged.error?.details);

    const text = await (await fetch(svc.url('/metrics'))).text();
    for (const door of ['0', '1']) {
      const relayed = metricValue(text, 'sentiric_media_front_door_requests_total', { method: 'AllocatePort', outcome: 'forwarded', front_door: door }) ?? 0;
      assert.ok(relayed >= 2, `front door ${door} relayed ${relayed} AllocatePort requests`);
      assert.notEqual(metricValue(text, 'sentiric_media_nodejs_eventloop_lag_p99_seconds', { front_door: door }), undefined, `no event-loop delay of front door ${door}`);
    }
    const bySupervisor = text.split('\n').filter((l) => l.startsWith('sentiric_media_front_door_requests_total{') && !l.includes('front_door="'));
    assert.deepEqual(bySupervisor, [], 'the supervisor relayed requests itself');
    for (const c of spare) assert.equal((await c.client.media_('ReleasePort', { rtp_port: c.port })).error, undefined);
  });

  test('kill -9 of a front door: its streams end UNAVAILABLE, the calls go on, clients reconnect and it is started again', async () => {
    const calls: { id: string; port: number; client: TestClient; phone: RtpPeer }[] = [];
    for (const c of clients) calls.push({ ...(await allocate(c)), client: c, phone: await peer() });
    const forks = calls.map((c) => fork(c.client, c.port));
    const talking = setInterval(() => {
      for (const c of calls) void c.phone.sendPcm(tone(400, 100, 8000), c.port);
    }, 100);
    try {
      await eventually(() => forks.every((f) => f.frames.length >= 10), 5000);
      const [victim] = await doors();
      assert.ok(victim?.pid, 'front door 0 has no pid');
      process.kill(victim.pid, 'SIGKILL');

      // Half the connections were on it: their forks end with a status a client retries on.
      const ended = await Promise.race([Promise.all(forks.map((f) => f.status)), sleep(500).then(() => null)]);
      const statuses = ended ?? (await Promise.all(forks.map((f) => Promise.race([f.status, sleep(2000).then(() => null)]))));
      const cut = statuses.filter((s) => s !== null);
      assert.equal(cut.length, 2, `${cut.length} of 4 forks ended; the two on the killed front door should have`);
      for (const s of cut) assert.equal(s!.code, grpc.status.UNAVAILABLE, s!.details);
      const survivors = forks.filter((_, i) => statuses[i] === null);
      const before = survivors.map((f) => f.frames.length);
      await sleep(500);
      survivors.forEach((f, i) => assert.ok(f.frames.length > before[i]! + 10, 'a fork on the surviving front door stopped'));

      // Every call is still there: a fork reopened on each client delivers the caller again.
      const again = calls.map((c) => fork(c.client, c.port));
      await eventually(() => again.every((f) => f.frames.length >= 10), 5000);
      for (const f of [...again, ...survivors]) f.stream.cancel();

      await eventually(async () => {
        const d = (await doors())[0]!;
        return d.ready && d.restarts === 1 && d.pid !== victim.pid;
      }, 10_000, 100);
      const text = await (await fetch(svc.url('/metrics'))).text();
      assert.equal(metricValue(text, 'sentiric_media_front_door_restarts_total', { front_door: '0' }), 1);
      assert.equal(metricValue(text, 'sentiric_media_front_door_restarts_total', { front_door: '1' }), 0);
    } finally {
      clearInterval(talking);
      for (const f of forks) f.stream.cancel();
    }
    for (const c of calls) assert.equal((await c.client.media_('ReleasePort', { rtp_port: c.port })).error, undefined);
  });

  test('a front door that stops answering (SIGSTOP) is killed and started again; its clients reconnect', async () => {
    const victim = (await doors())[1]!;
    assert.ok(victim.pid && victim.ready);
    process.kill(victim.pid, 'SIGSTOP');
    try {
      const hung = await svc.waitForLog((l) => l.event === 'FRONT_DOOR_HUNG' && (l.attributes as Record<string, unknown>)['front_door.pid'] === victim.pid, 10_000);
      const silent = Number((hung.attributes as Record<string, unknown>)['front_door.silent_ms']);
      assert.ok(silent >= 2000 && silent < 4000, `killed after ${silent} ms of silence`);
      await eventually(async () => {
        const d = (await doors())[1]!;
        return d.ready && d.restarts === victim.restarts + 1 && d.pid !== victim.pid;
      }, 10_000, 100);
    } finally {
      try {
        process.kill(victim.pid, 'SIGCONT');
      } catch {}
    }
    // Every client is served again, those that were on the stuck process included.
    for (const c of clients) {
      const call = await eventually(async () => {
        const r = await c.media_<{ rtp_port: number }>('AllocatePort', { call_id: newCallId() });
        return r.response ?? false;
      }, 10_000, 100);
      assert.equal((await c.media_('ReleasePort', { rtp_port: call.rtp_port })).error, undefined);
    }
  });

  test('SIGTERM: the front doors stop with the instance, which exits 0', async () => {
    const pids = (await doors()).map((d) => d.pid!);
    assert.equal(pids.length, 2);
    const code = await svc.stop('SIGTERM');
    assert.equal(code, 0);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `front door ${pid} outlived the instance`);
  });
});

/**
 * Node hands a child one socket at a time, the next once the child acknowledged the last: a
 * front door that stops taking them must not hold the connections queued behind it.
 */
describe('an instance whose only front door stops taking connections', () => {
  let svc: RunningService;
  const clients: TestClient[] = [];
  const open = (): TestClient => {
    const c = new TestClient(svc.grpcPort, undefined, { 'grpc.use_local_subchannel_pool': 1 });
    clients.push(c);
    return c;
  };
  const allocate = async (c: TestClient, id: string): Promise<{ port?: number; code?: number; ms: number }> => {
    const t = performance.now();
    const r = await c.media_<{ rtp_port: number }>('AllocatePort', { call_id: id });
    return { ...(r.response ? { port: r.response.rtp_port } : { code: r.error?.code }), ms: performance.now() - t };
  };

  before(async () => {
    svc = await startService({
      env: {
        MEDIA_SHARDS: '2',
        MEDIA_FRONT_DOORS: '1',
        MEDIASOUP_NUM_WORKERS: '2',
        RTP_SERVICE_PORT_MIN: String(RTP_MIN),
        RTP_SERVICE_PORT_MAX: String(RTP_MAX),
        LOG_LEVEL: 'info',
        ADMISSION_MAX_CPU: '0',
        ADMISSION_MAX_LOOP_LAG_MS: '0',
        MEDIA_HANG_TIMEOUT_SECONDS: '3',
      },
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    if (svc.proc.exitCode === null) await svc.stop('SIGKILL');
  });

  test('connections queued behind it go to the supervisor: at once once it looks stalled, the rest when it is killed', async () => {
    const [door] = ((await (await fetch(svc.url('/debug/resources'))).json()) as { front_doors: Door[] }).front_doors;
    assert.ok(door?.pid);
    process.kill(door.pid, 'SIGSTOP');
    const stoppedAt = performance.now();
    try {
      // The first goes to the stopped process (its descriptor is sent) and waits for its end.
      const firstClient = open();
      const first = allocate(firstClient, `queued-${process.pid}-1@test`);
      await sleep(300);
      // The second waits behind the first's acknowledgement, which never comes.
      const second = allocate(open(), `queued-${process.pid}-2@test`);
      await sleep(800);
      // The front door has not taken a connection for over 500 ms: the supervisor relays this one.
      const third = await allocate(open(), `queued-${process.pid}-3@test`);
      assert.ok(third.port, 'the third client was not served');
      assert.ok(performance.now() - stoppedAt < 3000, `the third client was served ${(performance.now() - stoppedAt).toFixed(0)} ms after the stop, not before the kill`);
      // Once the stuck process is killed, the queued one is relayed by the supervisor as it
      // was; the first, which the killed process held, ends UNAVAILABLE and its retry works.
      const [a, b] = await Promise.all([first, second]);
      assert.ok(b.port, `the queued client got ${b.code}`);
      assert.ok(b.ms >= 2000, `the queued client was served after ${b.ms.toFixed(0)} ms: before the stuck process was killed`);
      assert.equal(a.code, grpc.status.UNAVAILABLE, `the first client got ${a.port ?? a.code}`);
      assert.ok(a.ms >= 2500, `the first client's call ended after ${a.ms.toFixed(0)} ms: before the stuck process was killed`);
      assert.ok((await allocate(firstClient, `queued-${process.pid}-1@test`)).port, 'the first client’s retry was not served');
    } finally {
      try {
        process.kill(door.pid, 'SIGCONT');
      } catch {}
    }
    const text = await (await fetch(svc.url('/metrics'))).text();
    const bySupervisor = metricValue(text, 'sentiric_media_front_door_requests_total', { method: 'AllocatePort', outcome: 'forwarded' });
    assert.ok((bySupervisor ?? 0) >= 2, `the supervisor relayed ${bySupervisor} AllocatePort requests`);
    await svc.waitForLog((l) => l.event === 'FRONT_DOOR_HUNG', 1000);
  });
});
