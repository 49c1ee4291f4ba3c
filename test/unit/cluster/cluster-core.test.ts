import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallDirectory } from '../../../src/cluster/call-directory.ts';
import { mergeExpositions } from '../../../src/cluster/metrics-merge.ts';
import { place, placeNear } from '../../../src/cluster/placement.ts';
import { frontDoorCount, planShards, shardOfPort } from '../../../src/cluster/shard-plan.ts';
import { routeKeyOf, shardOfRoom } from '../../../src/cluster/route.ts';
import { loadConfig } from '../../../src/config/load.ts';

const entry = (callId: string, port: number) => ({ callId, port, traceId: 't', tenantId: 'x' });

test('shards get disjoint, even-aligned slices of every range and a spool each', () => {
  const { config } = loadConfig({ env: { RTP_SERVICE_PORT_MIN: '10000', RTP_SERVICE_PORT_MAX: '10999', MEDIASOUP_NUM_WORKERS: '4' }, argv: [], cwd: '/nonexistent' });
  const slices = planShards(config, 3);
  assert.equal(slices.length, 3);
  for (const [i, s] of slices.entries()) {
    assert.equal(s.rtpMin % 2, 0);
    assert.ok(s.rtpMax > s.rtpMin);
    if (i > 0) {
      assert.ok(s.rtpMin > slices[i - 1]!.rtpMax, 'RTP slices overlap');
      assert.ok(s.rtcMin > slices[i - 1]!.rtcMax, 'mediasoup slices overlap');
      assert.ok(s.webrtcPort >= slices[i - 1]!.webrtcPort + slices[i - 1]!.workers, 'WebRTC ports overlap');
    }
    assert.ok(s.spoolDir.endsWith(`shard-${i}`));
  }
  assert.ok(slices[2]!.rtpMax <= 10999);
  assert.equal(shardOfPort(slices, slices[1]!.rtpMin), 1);
  assert.equal(shardOfPort(slices, slices[2]!.rtpMax), 2);
  assert.equal(shardOfPort(slices, 9998), null);
  assert.deepEqual(planShards(config, 3), slices, 'a restarted shard gets its own slice back');
  assert.throws(() => planShards(loadConfig({ env: { RTP_SERVICE_PORT_MIN: '10000', RTP_SERVICE_PORT_MAX: '10005' }, argv: [], cwd: '/nonexistent' }).config, 4), /too few/);
});

test('front-door processes: none by default (the shards take the connections); a number is taken as it is', () => {
  const cfg = (v?: string) => loadConfig({ env: v === undefined ? {} : { MEDIA_FRONT_DOORS: v }, argv: [], cwd: '/nonexistent' }).config;
  assert.equal(frontDoorCount(cfg()), 0);
  assert.equal(frontDoorCount(cfg('auto')), 0);
  assert.equal(frontDoorCount(cfg('0')), 0);
  assert.equal(frontDoorCount(cfg('3')), 3);
  for (const bad of ['-1', '17', '1.5', 'some']) assert.throws(() => cfg(bad), /cluster\.front_doors: must be auto or a whole number from 0 to 16/);
});

test('placement: least CPU first, then fewest calls; refuses with the reason when all are full', () => {
  const limits = { maxCpu: 0.85, maxLoopLagMs: 40, maxSessions: 10 };
  const load = (cpu: number, sessions: number, loopLagMs = 1) => ({ cpu, sessions, loopLagMs });
  assert.deepEqual(place([{ index: 0, ready: true, load: load(0.5, 1) }, { index: 1, ready: true, load: load(0.2, 9) }], limits), { ok: true, index: 1 });
  // CPU within one 5% step: fewer calls wins.
  assert.deepEqual(place([{ index: 0, ready: true, load: load(0.21, 3) }, { index: 1, ready: true, load: load(0.2, 5) }], limits), { ok: true, index: 0 });
  assert.deepEqual(place([{ index: 0, ready: false, load: load(0, 0) }, { index: 1, ready: true, load: load(0.5, 2) }], limits), { ok: true, index: 1 });
  // Idle shards' CPU noise (0.12 against 0.01) does not pull every call onto one of them.
  assert.deepEqual(place([{ index: 0, ready: true, load: load(0.01, 6) }, { index: 1, ready: true, load: load(0.12, 5) }], limits), { ok: true, index: 1 });
  const full = place([{ index: 0, ready: true, load: load(0.9, 1) }, { index: 1, ready: true, load: load(0.1, 10) }, { index: 2, ready: true, load: load(0.1, 1, 55) }], limits);
  assert.equal(full.ok, false);
  assert.match(!full.ok ? full.why : '', /shard 0: CPU 90% > 85%.*shard 1: 10 calls \(limit 10\).*shard 2: event-loop delay 55\.0 ms > 40 ms/);
  const none = place([{ index: 0, ready: false, load: load(0, 0) }], limits);
  assert.deepEqual(none, { ok: false, why: 'no media shard is ready' });
});

test('placement near the client connection: its shard wins while about as loaded as the best, never over a limit', () => {
  const limits = { maxCpu: 0.85, maxLoopLagMs: 40, maxSessions: 100 };
  const load = (cpu: number, sessions: number) => ({ cpu, sessions, loopLagMs: 1 });
  const two = (a: [number, number], b: [number, number]) => [
    { index: 0, ready: true, load: load(...a) },
    { index: 1, ready: true, load: load(...b) },
  ];
  // Shard 1 is the least loaded, but shard 0 holds the connection and is within the slack.
  assert.deepEqual(placeNear(two([0.3, 12], [0.2, 10]), limits, 0), { ok: true, index: 0 });
  assert.deepEqual(placeNear(two([0.3, 12], [0.2, 10]), limits, undefined), { ok: true, index: 1 });
  // Past the slack (2 calls, or a tenth) or a CPU band ahead: the calls spread.
  assert.deepEqual(placeNear(two([0.3, 13], [0.2, 10]), limits, 0), { ok: true, index: 1 });
  assert.deepEqual(placeNear(two([0.3, 55], [0.25, 50]), limits, 0), { ok: true, index: 0 });
  assert.deepEqual(placeNear(two([0.3, 56], [0.25, 50]), limits, 0), { ok: true, index: 1 });
  assert.deepEqual(placeNear(two([0.45, 10], [0.2, 10]), limits, 0), { ok: true, index: 1 });
  // Over a limit, or not ready: never chosen for being near.
  assert.deepEqual(placeNear(two([0.9, 0], [0.2, 10]), limits, 0), { ok: true, index: 1 });
  assert.deepEqual(placeNear([{ index: 0, ready: false, load: load(0, 0) }, { index: 1, ready: true, load: load(0.2, 1) }], limits, 0), { ok: true, index: 1 });
  // One connection holding every call: the second shard still gets its share.
  const calls = [0, 0];
  for (let k = 0; k < 100; k++) {
    const p = placeNear(two([0.1, calls[0]!], [0.1, calls[1]!]), limits, 0);
    assert.ok(p.ok);
    calls[p.index]!++;
  }
  assert.ok(calls[1]! >= 45 && calls[0]! <= 55, `spread ${calls.join('/')}`);
});

test('call directory: a placement holds its shard until the call opens, a failed one frees it', () => {
  let now = 0;
  const d = new CallDirectory(() => now);
  d.placed('a', 1);
  assert.equal(d.ownerOf('a'), 1);
  assert.equal(d.pendingOn(1), 1);
  d.settled('a', 1, false);
  assert.equal(d.ownerOf('a'), undefined);
  d.placed('b', 0);
  d.settled('b', 0, true); // answered before the shard's report arrived: still held
  assert.equal(d.ownerOf('b'), 0);
  d.opened(0, entry('b', 10000));
  assert.equal(d.pendingOn(0), 0);
  assert.equal(d.loadOn(0), 1);
  assert.equal(d.ownerOf('b'), 0);
  d.closed(1, 'b'); // another shard's close of the same id does not remove it
  assert.equal(d.ownerOf('b'), 0);
  d.placed('c', 1);
  now += 31_000;
  assert.equal(d.ownerOf('c'), undefined, 'a placement whose call never opened expires');
  d.opened(1, entry('d', 12000));
  d.opened(1, entry('e', 12002));
  assert.deepEqual(d.dropShard(1).map((e) => e.callId).sort(), ['d', 'e']);
  assert.equal(d.ownerOf('d'), undefined);
  assert.equal(d.size, 1);
});

test('routing keys come from each method’s own fields', () => {
  assert.deepEqual(routeKeyOf('PlayAudio', { server_rtp_port: 10002 }), { kind: 'port', port: 10002 });
  assert.deepEqual(routeKeyOf('AllocatePort', { call_id: 'x' }), { kind: 'call', callId: 'x', allocate: true });
  assert.deepEqual(routeKeyOf('AllocatePort', { call_id: 'x', conference_id: 'c' }), { kind: 'call', callId: 'x', allocate: true, near: 'c' });
  assert.deepEqual(routeKeyOf('StreamAudioToCall', { call_id: 'x' }), { kind: 'call', callId: 'x', allocate: false });
  assert.deepEqual(routeKeyOf('InjectAudio', { start: { server_rtp_port: 10004 } }), { kind: 'port', port: 10004 });
  assert.deepEqual(routeKeyOf('InjectAudio', { start: { call_id: 'y' } }), { kind: 'call', callId: 'y', allocate: false });
  assert.deepEqual(routeKeyOf('BridgeCalls', { server_rtp_port_a: 1, server_rtp_port_b: 2 }), { kind: 'port', port: 1, otherPort: 2 });
  assert.deepEqual(routeKeyOf('CreateRoomToken', { room_id: 'r' }), { kind: 'room', roomId: 'r' });
  assert.deepEqual(routeKeyOf('Nothing', {}), { kind: 'any' });
  assert.deepEqual(routeKeyOf('CreateConference', { conference_id: 'c' }), { kind: 'conference', conferenceId: 'c', create: true });
  assert.deepEqual(routeKeyOf('AddToConference', { conference_id: 'c', server_rtp_port: 10006 }), { kind: 'conference', conferenceId: 'c', port: 10006, request: { conference_id: 'c', server_rtp_port: 10006 } });
  assert.deepEqual(routeKeyOf('StartRecording', { conference_id: 'c', server_rtp_port: 0 }), { kind: 'conference', conferenceId: 'c' });
  assert.deepEqual(routeKeyOf('StartRecording', { conference_id: '', server_rtp_port: 10008 }), { kind: 'port', port: 10008 });
  assert.deepEqual(routeKeyOf('InjectAudio', { start: { conference_id: 'c' } }), { kind: 'conference', conferenceId: 'c' });
  assert.equal(shardOfRoom('room-1', 4), shardOfRoom('room-1', 4));
  const spread = new Set(Array.from({ length: 64 }, (_, i) => shardOfRoom(`r${i}`, 4)));
  assert.equal(spread.size, 4);
});

test('merged metrics keep each family together under one header, every sample labelled by its shard', () => {
  const a = '# HELP x_total things\n# TYPE x_total counter\nx_total 3\n# HELP y gauge\n# TYPE y gauge\ny{k="v"} 1\n';
  const b = '# HELP x_total things\n# TYPE x_total counter\nx_total 4\n# HELP y gauge\n# TYPE y gauge\ny{k="w"} 2\n';
  const merged = mergeExpositions([
    { labels: { shard: '0' }, text: a },
    { labels: { shard: '1' }, text: b },
    { labels: {}, text: '# HELP z own\n# TYPE z gauge\nz 9\n' },
  ]);
  assert.equal(
    merged,
    '# HELP x_total things\n# TYPE x_total counter\nx_total{shard="0"} 3\nx_total{shard="1"} 4\n' +
      '# HELP y gauge\n# TYPE y gauge\ny{shard="0",k="v"} 1\ny{shard="1",k="w"} 2\n# HELP z own\n# TYPE z gauge\nz 9\n',
  );
});
