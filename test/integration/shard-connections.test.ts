import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually, metricValue } from '../helpers/grpc-client.ts';
import { RtpPeer } from '../helpers/rtp-peer.ts';
import { tone } from '../helpers/audio.ts';
import { allocateCall, hearsBothWays, openFork } from '../helpers/ai-call.ts';

const RTP_MIN = 39400;
const RTP_MAX = 39599;
/** Two shards split 100 port pairs evenly: shard 1 starts here. */
const SHARD1_MIN = 39500;
const shardOf = (port: number): number => (port >= SHARD1_MIN ? 1 : 0);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Shard {
  index: number;
  ready: boolean;
  load: { cpu: number };
  pid: number;
  restarts: number;
  connections: number;
}

/**
 * With no front-door process, the supervisor hands each client connection to a shard. A new
 * call asked for on it is placed on that shard while it has about the least load, and every
 * request about it is then served there, by the shard's own gRPC server, with nothing relayed
 * between processes; a request about another shard's call is relayed by the shard.
 */
describe('an instance whose shards take the client connections', () => {
  let svc: RunningService;
  /** Two platform clients, each on a connection of its own. */
  let clients: TestClient[] = [];
  const peers: RtpPeer[] = [];
  let n = 0;
  const newCallId = (): string => `direct-${process.pid}-${++n}@test`;
  const shards = async (): Promise<Shard[]> => ((await (await fetch(svc.url('/debug/resources'))).json()) as { shards: Shard[] }).shards;
  /**
   * Placement follows the connection only while its shard is within a CPU band of the least
   * busy one (as it should): the tests start once no shard is busy with start-up work or the
   * last test's calls, so what they see is the connection's doing, not a CPU reading's.
   */
  const quiet = async (): Promise<void> => {
    await eventually(async () => (await shards()).every((s) => s.ready && s.load.cpu < 0.1), 20_000, 250);
  };
  const metrics = async (): Promise<string> => (await fetch(svc.url('/metrics'))).text();
  const routed = (text: string, shard: number, method: string, outcome: string): number =>
    metricValue(text, 'sentiric_media_front_door_requests_total', { shard: String(shard), method, outcome }) ?? 0;
  const allocate = (c: TestClient, id = newCallId()): Promise<{ id: string; port: number }> => allocateCall(c, id);
  const peer = async (): Promise<RtpPeer> => {
    const p = await RtpPeer.open();
    peers.push(p);
    return p;
  };
  const fork = openFork;
  const bothWays = async (c: TestClient, call: { id: string; port: number }): Promise<void> => hearsBothWays(c, call, await peer());

  before(async () => {
    svc = await startService({
      env: {
        MEDIA_SHARDS: '2',
        MEDIASOUP_NUM_WORKERS: '2',
        RTP_SERVICE_PORT_MIN: String(RTP_MIN),
        RTP_SERVICE_PORT_MAX: String(RTP_MAX),
        RTP_SERVICE_PORT_QUARANTINE_SECONDS: '0',
        LOG_LEVEL: 'info',
        ADMISSION_MAX_CPU: '0',
        ADMISSION_MAX_LOOP_LAG_MS: '0',
      },
    });
    // grpc-js shares one connection among clients of one address unless each keeps its own pool.
    clients = [0, 1].map(() => new TestClient(svc.grpcPort, undefined, { 'grpc.use_local_subchannel_pool': 1 }));
  });
  after(async () => {
    for (const p of peers) p.close();
    for (const c of clients) c.close();
    if (svc.proc.exitCode === null) await svc.stop('SIGKILL');
  });

  test('each connection goes to a shard; its calls are placed there and served there, nothing relayed', async () => {
    await quiet();
    const [a, b] = clients as [TestClient, TestClient];
    const mine: { id: string; port: number }[][] = [[], []];
    for (let k = 0; k < 5; k++) {
      mine[0]!.push(await allocate(a));
      mine[1]!.push(await allocate(b));
    }
    assert.deepEqual(
      (await shards()).map((s) => s.connections),
      [1, 1],
      'one connection held by each shard',
    );
    const homeA = shardOf(mine[0]![0]!.port);
    const homeB = shardOf(mine[1]![0]!.port);
    assert.notEqual(homeA, homeB, 'the two connections’ calls are on the same shard');
    for (const c of mine[0]!) assert.equal(shardOf(c.port), homeA, 'a call of connection A was placed away from its shard');
    for (const c of mine[1]!) assert.equal(shardOf(c.port), homeB, 'a call of connection B was placed away from its shard');

    await bothWays(a, mine[0]![0]!);
    await bothWays(b, mine[1]![0]!);

    const text = await metrics();
    for (const [home, count] of [
      [homeA, 5],
      [homeB, 5],
    ] as const) {
      assert.equal(routed(text, home, 'AllocatePort', 'served'), count, `shard ${home} served its connection’s AllocatePort itself`);
      assert.ok(routed(text, home, 'RecordAudio', 'served') >= 1 && routed(text, home, 'StreamAudioToCall', 'served') >= 1, `shard ${home} did not serve its fork and TTS itself`);
      assert.equal(routed(text, home, 'AllocatePort', 'forwarded'), 0, `shard ${home} relayed an AllocatePort`);
      assert.equal(routed(text, home, 'RecordAudio', 'forwarded'), 0, `shard ${home} relayed a fork`);
    }
    const bySupervisor = text.split('\n').filter((l) => l.startsWith('sentiric_media_front_door_requests_total{') && !l.includes('shard="'));
    assert.deepEqual(bySupervisor, [], 'the supervisor relayed requests itself');
    for (const [i, list] of mine.entries()) for (const c of list) assert.equal((await clients[i]!.media_('ReleasePort', { rtp_port: c.port })).error, undefined);
  });

  test('the shard holding a connection lets the client have 1 MiB in flight on it, for every call it carries', async () => {
    const raw = http2.connect(`http://127.0.0.1:${svc.grpcPort}`);
    try {
      await once(raw, 'remoteSettings');
      // The WINDOW_UPDATE comes with the shard's first frames: a PING's answer follows it.
      for (let k = 0; k < 50 && raw.state.remoteWindowSize !== 1 << 20; k++) await new Promise<void>((resolve, reject) => raw.ping((err) => (err ? reject(err) : resolve())));
      assert.equal(raw.state.remoteWindowSize, 1 << 20, 'the connection’s window');
      assert.equal(raw.remoteSettings.initialWindowSize, 1 << 20, 'each stream’s window');
    } finally {
      raw.destroy();
    }
  });

  test('a request about another shard’s call is relayed by the shard holding the connection; one connection’s calls still spread', async () => {
    await quiet();
    const [a, b] = clients as [TestClient, TestClient];
    const ofB = await allocate(b);
    const homeA = 1 - shardOf(ofB.port);
    // Connection A asks about a call of the other shard: relayed there, heard both ways.
    await bothWays(a, ofB);
    const text = await metrics();
    assert.ok(routed(text, homeA, 'RecordAudio', 'forwarded') >= 1, 'the fork of the other shard’s call was not relayed');
    assert.ok(routed(text, homeA, 'StreamAudioToCall', 'forwarded') >= 1, 'the TTS of the other shard’s call was not relayed');

    // Every new call on one connection: its shard leads by a few, the other still takes its share.
    const placed: number[] = [0, 0];
    const calls: { id: string; port: number }[] = [];
    for (let k = 0; k < 12; k++) {
      const c = await allocate(a);
      calls.push(c);
      placed[shardOf(c.port)]!++;
    }
    assert.ok(placed[homeA]! > placed[1 - homeA]! && placed[1 - homeA]! >= 3, `12 calls of one connection placed ${placed.join('/')}`);
    for (const c of [...calls, ofB]) assert.equal((await a.media_('ReleasePort', { rtp_port: c.port })).error, undefined);
  });

  test('kill -9 of a shard: its connection is cut and reconnects, the other shard’s streams go on, the calls are carried on', async () => {
    await quiet();
    const [a, b] = clients as [TestClient, TestClient];
    const callA = await allocate(a);
    const callB = await allocate(b);
    const homeA = shardOf(callA.port);
    assert.notEqual(homeA, shardOf(callB.port));
    const phones = [await peer(), await peer()];
    const forks = [fork(a, callA.port), fork(b, callB.port)];
    // Kept to be waited for: a send still running once the test ends would find its socket closed.
    const sending = new Set<Promise<unknown>>();
    const send = (p: Promise<unknown>): void => {
      sending.add(p);
      void p.finally(() => sending.delete(p));
    };
    const talking = setInterval(() => {
      send(phones[0]!.sendPcm(tone(400, 100, 8000), callA.port));
      send(phones[1]!.sendPcm(tone(400, 100, 8000), callB.port));
    }, 100);
    try {
      await eventually(() => forks.every((f) => f.frames.length >= 10), 5000);
      const victim = (await shards())[homeA]!;
      process.kill(victim.pid, 'SIGKILL');
      const cut = await Promise.race([forks[0]!.status, sleep(3000).then(() => null)]);
      assert.equal(cut?.code, grpc.status.UNAVAILABLE, 'the fork on the killed shard’s connection did not end UNAVAILABLE');
      const before = forks[1]!.frames.length;
      await sleep(500);
      assert.ok(forks[1]!.frames.length > before + 10, 'the fork served by the other shard stopped');
      await eventually(async () => {
        const s = (await shards())[homeA]!;
        return s.ready && s.restarts === victim.restarts + 1;
      }, 10_000, 100);
      // The call was carried on by the restarted shard; client A's reconnect reaches it.
      const again = fork(a, callA.port);
      await eventually(() => again.frames.length >= 10, 5000);
      again.stream.cancel();
      assert.equal((await shards()).reduce((sum, s) => sum + s.connections, 0), 2, 'both clients hold one connection again');
    } finally {
      clearInterval(talking);
      await Promise.all(sending);
      for (const f of forks) f.stream.cancel();
    }
    assert.equal((await a.media_('ReleasePort', { rtp_port: callA.port })).error, undefined);
    assert.equal((await b.media_('ReleasePort', { rtp_port: callB.port })).error, undefined);
  });
});
