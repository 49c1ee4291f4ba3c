import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually, metricValue } from '../helpers/grpc-client.ts';
import { RtpPeer } from '../helpers/rtp-peer.ts';
import { dominantHz, tone, toneDbfs } from '../helpers/audio.ts';
import { shardOfRoom } from '../../src/cluster/route.ts';
import { ffmpegDecodeChannels, ffprobe } from '../helpers/ffmpeg.ts';

type Stream = grpc.ClientReadableStream<Record<string, unknown>>;

const RTP_MIN = 35000;
const RTP_MAX = 35399;
const SHARD1_MIN = 35200;
const CALLS_ON_VICTIM = 20;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const today = (): string => new Date().toISOString().slice(0, 10).replace(/-/g, '/');
/** How far `b` is ahead of `a` in 16-bit sequence space. */
const seqAhead = (a: number, b: number): number => ((b - a + 0x10000) & 0xffff);

describe('a media shard killed with -9 under live calls', () => {
  let svc: RunningService;
  let client: TestClient;
  const peers: RtpPeer[] = [];
  const fileRoot = mkdtempSync(join(tmpdir(), 'failover-rec-'));

  before(async () => {
    svc = await startService({
      env: {
        MEDIA_SHARDS: '2',
        MEDIASOUP_NUM_WORKERS: '2',
        RTP_SERVICE_PORT_MIN: String(RTP_MIN),
        RTP_SERVICE_PORT_MAX: String(RTP_MAX),
        LOG_LEVEL: 'info',
        ADMISSION_MAX_CPU: '0',
        ADMISSION_MAX_LOOP_LAG_MS: '0',
        RECORDING_FILE_ROOT: fileRoot,
        RECORDING_SPOOL_DIR: join(fileRoot, 'spool'),
        MEDIA_HANG_TIMEOUT_SECONDS: '3',
      },
    });
    client = new TestClient(svc.grpcPort);
    // Placement reads CPU: let the shards' start-up work pass so idle shards look idle.
    await eventually(async () => {
      const d = (await (await fetch(svc.url('/debug/resources'))).json()) as { shards: { load: { cpu: number } }[] };
      return d.shards.every((sh) => sh.load.cpu < 0.15);
    }, 30_000, 250);
  });
  after(async () => {
    for (const p of peers) p.close();
    client.close();
    if (svc.proc.exitCode === null) await svc.stop('SIGKILL');
    rmSync(fileRoot, { recursive: true, force: true });
  });

  test('its calls go on: the phones hear the same stream again within a second, forks reopen, the recording goes on in its file', async () => {
    // Calls until the victim (shard 1) carries twenty; echo makes each phone hear the service all the time.
    const victim: { id: string; port: number; phone: RtpPeer }[] = [];
    const others: number[] = [];
    for (let k = 0; victim.length < CALLS_ON_VICTIM && k < 200; k++) {
      const id = `failover-${process.pid}-${k}@test`;
      const r = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: id });
      assert.equal(r.error, undefined, r.error?.details);
      const port = r.response!.rtp_port;
      if (port < SHARD1_MIN) {
        others.push(port);
        continue;
      }
      const phone = await RtpPeer.open();
      peers.push(phone);
      assert.equal((await client.media_('PlayAudio', { audio_uri: 'control://enable_echo', server_rtp_port: port, rtp_target_addr: phone.address })).error, undefined);
      victim.push({ id, port, phone });
    }
    assert.equal(victim.length, CALLS_ON_VICTIM);
    const talking = victim.map((c) => c.phone.sendPcm(tone(400, 7000, 8000), c.port));
    const recorded = victim[0]!;
    const recAt = performance.now();
    const rec = await client.media_('StartRecording', { server_rtp_port: recorded.port, output_uri: 'file:///failover/', sample_rate: 8000 });
    assert.equal(rec.error, undefined, rec.error?.details);
    const forked = victim[1]!;
    const fork = (client.media as unknown as Record<string, (r: unknown) => Stream>).RecordAudio!({ server_rtp_port: forked.port, target_sample_rate: 16000 });
    const forkStatus = new Promise<grpc.StatusObject>((r) => fork.on('status', r));
    // A bridge within the shard, one to a call of the other shard, and a long prompt playing.
    assert.equal((await client.media_('BridgeCalls', { server_rtp_port_a: victim[2]!.port, server_rtp_port_b: victim[3]!.port })).error, undefined);
    assert.equal((await client.media_('BridgeCalls', { server_rtp_port_a: victim[4]!.port, server_rtp_port_b: others[0]! })).error, undefined);
    const prompt = `data:audio/pcm;base64,${Buffer.from(tone(300, 20_000, 8000, 2000).buffer).toString('base64')}`;
    assert.equal((await client.media_('PlayAudio', { audio_uri: prompt, server_rtp_port: victim[5]!.port })).error, undefined);
    fork.on('data', () => {});
    fork.on('error', () => {});
    // The recorder writes its spool once a second: 2.5 s in, two seconds are on disk.
    await sleep(2500);
    for (const c of victim) assert.ok(c.phone.received.length > 50, `call ${c.port} heard ${c.phone.received.length} packets before the crash`);

    const debug = (await (await fetch(svc.url('/debug/resources'))).json()) as { shards: { index: number; pid: number }[] };
    const killedAt = performance.now();
    const before = victim.map((c) => c.phone.received.length);
    process.kill(debug.shards.find((s) => s.index === 1)!.pid, 'SIGKILL');

    // The fork ends with a status that says "try again", not a hang or an internal error.
    const st = await forkStatus;
    assert.equal(st.code, grpc.status.UNAVAILABLE, st.details);

    await svc.waitForLog((l) => l.event === 'SHARD_READY' && (l.attributes as Record<string, unknown>)['shard.restarts'] === 1, 20_000);
    await sleep(1500);
    const gaps: number[] = [];
    for (const [i, c] of victim.entries()) {
      const old = c.phone.received.slice(0, before[i]);
      const fresh = c.phone.received.slice(before[i]).filter((p) => p.at > killedAt + 50);
      assert.ok(fresh.length > 10, `call ${c.port}: ${fresh.length} packets after the restart`);
      const last = old.at(-1)!;
      const first = fresh[0]!;
      assert.equal(first.ssrc, last.ssrc, `call ${c.port}: the SSRC changed across the restart`);
      const ahead = seqAhead(last.seq, first.seq);
      assert.ok(ahead >= 1 && ahead < 500, `call ${c.port}: sequence ${last.seq} -> ${first.seq} does not continue`);
      const tsAhead = (first.ts - last.ts) >>> 0;
      assert.ok(tsAhead > 0 && tsAhead < 8000 * 10, `call ${c.port}: timestamp ${last.ts} -> ${first.ts} does not go on`);
      gaps.push(first.at - last.at);
    }
    gaps.sort((a, b) => a - b);
    const median = gaps[Math.floor(gaps.length / 2)]!;
    const worst = gaps.at(-1)!;
    assert.ok(worst < 5000, `worst silence at a phone ${worst.toFixed(0)} ms`);
    process.stdout.write(`# failover: silence at the phones median ${median.toFixed(0)} ms, worst ${worst.toFixed(0)} ms\n`);

    // Both bridges are made again; the prompt that was playing is reported interrupted.
    await eventually(async () => {
      const text = await (await fetch(svc.url('/metrics'))).text();
      return (metricValue(text, 'sentiric_media_bridges_active', { shard: '0' }) ?? 0) + (metricValue(text, 'sentiric_media_bridges_active', { shard: '1' }) ?? 0) === 2;
    }, 5000);
    await svc.waitForLog((l) => l.event === 'PLAYBACK_FINISHED' && l.call_id === victim[5]!.id && (l.attributes as Record<string, unknown>)['playback.result'] === 'interrupted', 5000);

    // A reopened fork on the restored call delivers the caller again.
    const again = (client.media as unknown as Record<string, (r: unknown) => Stream>).RecordAudio!({ server_rtp_port: forked.port, target_sample_rate: 16000 });
    let frames = 0;
    again.on('data', () => frames++);
    again.on('error', () => {});
    await eventually(() => frames >= 10, 5000);
    again.cancel();

    // The recording goes on in its file: the caller before and after the crash, silence between.
    await svc.waitForLog((l) => l.event === 'RECORDING_CONTINUED' && l.call_id === recorded.id, 5000);
    await Promise.all(talking);
    assert.equal((await client.media_('ReleasePort', { rtp_port: recorded.port })).error, undefined);
    const callMs = performance.now() - recAt;
    const path = join(fileRoot, 'failover', today(), `${recorded.id}.wav`);
    await eventually(() => existsSync(path), 15_000);
    const info = ffprobe(path);
    assert.ok(Math.abs(info.duration * 1000 - callMs) < 400, `the recording is ${info.duration} s long, the call ${(callMs / 1000).toFixed(2)} s`);
    const [caller] = ffmpegDecodeChannels(path, 2);
    const killMs = killedAt - recAt;
    const window = (fromMs: number, toMs: number): Int16Array => caller!.subarray(Math.round((fromMs * 8000) / 1000), Math.round((toMs * 8000) / 1000));
    for (const [what, from, to] of [
      ['before', 500, killMs - 1200],
      ['after', killMs + 1500, killMs + 3000],
    ] as const) {
      const hz = dominantHz(window(from, to), 8000);
      assert.ok(Math.abs(hz - 400) < 20, `the recording ${what} the crash holds ${hz.toFixed(0)} Hz, not the caller's 400 Hz`);
    }
    assert.equal(svc.lines.filter((l) => l.event === 'SESSION_LOST').length, 0, 'no call was lost');
    assert.equal(svc.lines.filter((l) => l.event === 'RECORDING_RECOVERED' && l.call_id === recorded.id).length, 0, 'the recording was cut in two');
    for (const c of victim) await client.media_('ReleasePort', { rtp_port: c.port });
    for (const p of others) await client.media_('ReleasePort', { rtp_port: p });
  });

  test('a call the restarted shard cannot carry on is reported lost', async () => {
    // The restarted shard's start-up CPU keeps new calls away from it for a moment.
    await eventually(async () => {
      const d = (await (await fetch(svc.url('/debug/resources'))).json()) as { shards: { load: { cpu: number } }[] };
      return d.shards.every((sh) => sh.load.cpu < 0.15);
    }, 30_000, 250);
    // A port held by someone else when the shard comes back: the call cannot be rebound.
    let call: { id: string; port: number } | undefined;
    const extra: number[] = [];
    for (let k = 0; !call && k < 20; k++) {
      const id = `failover-lost-${process.pid}-${k}@test`;
      const r = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: id });
      assert.equal(r.error, undefined, r.error?.details);
      const port = r.response!.rtp_port;
      if (port >= SHARD1_MIN) call = { id, port };
      else extra.push(port);
      await sleep(50);
    }
    assert.ok(call, `twenty calls were placed on shard 0 (${extra.length})`);
    await sleep(700); // a snapshot reached the supervisor
    const debug = (await (await fetch(svc.url('/debug/resources'))).json()) as { shards: { index: number; pid: number }[] };
    process.kill(debug.shards.find((s) => s.index === 1)!.pid, 'SIGKILL');
    // Bound as soon as the dead process's socket is gone, long before its successor starts.
    const squatter = await eventually(
      () =>
        new Promise<Socket | false>((resolve) => {
          const sock = createSocket('udp4');
          sock.once('error', () => (sock.close(), resolve(false)));
          sock.bind(call.port, '127.0.0.1', () => resolve(sock));
        }),
      1000,
      2,
    );
    const lost = await svc.waitForLog((l) => l.event === 'SESSION_LOST' && l.call_id === call.id, 20_000);
    assert.match(String((lost.attributes as Record<string, unknown>)['lost.reason']), /EADDRINUSE|in use/);
    squatter.close();
    // Once its shard is back, the port names no call (meanwhile: UNAVAILABLE, try again).
    await eventually(async () => (await client.media_('PlayAudio', { audio_uri: 'control://stop_playback', server_rtp_port: call.port })).error?.code === grpc.status.NOT_FOUND, 10_000);
    for (const p of extra) await client.media_('ReleasePort', { rtp_port: p });
  });
  test('a conference goes on when either shard of its phones is killed: made again with who was in it and how they were set', async () => {
    await eventually(async () => {
      const d = (await (await fetch(svc.url('/debug/resources'))).json()) as { shards: { load: { cpu: number } }[] };
      return d.shards.every((sh) => sh.load.cpu < 0.15);
    }, 30_000, 250);
    // Mixed on shard 1, with two calls of shard 1 (one of them muted) and one of shard 0.
    let conf = `failover-conf-${process.pid}`;
    for (let i = 0; shardOfRoom(conf, 2) !== 1; i++) conf = `failover-conf-${process.pid}-${i}`;
    const onShard: Record<0 | 1, { id: string; port: number; phone: RtpPeer }[]> = { 0: [], 1: [] };
    const spare: number[] = [];
    for (let k = 0; (onShard[1].length < 2 || onShard[0].length < 1) && k < 100; k++) {
      const id = `failover-conf-${process.pid}-${k}@test`;
      const port = (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: id })).response!.rtp_port;
      const shard = port >= SHARD1_MIN ? 1 : 0;
      if (onShard[shard].length >= (shard === 1 ? 2 : 1)) {
        spare.push(port);
        continue;
      }
      const phone = await RtpPeer.open();
      peers.push(phone);
      assert.equal((await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: phone.address })).error, undefined);
      onShard[shard].push({ id, port, phone });
    }
    for (const p of spare) await client.media_('ReleasePort', { rtp_port: p });
    const [a, b] = onShard[1];
    const [c] = onShard[0];
    assert.ok(a && b && c, 'calls on both shards');
    assert.equal((await client.media_('CreateConference', { conference_id: conf })).error, undefined);
    for (const x of [a, b, c]) assert.equal((await client.media_('AddToConference', { conference_id: conf, server_rtp_port: x.port })).error, undefined);
    assert.equal((await client.media_('UpdateConferenceParticipant', { conference_id: conf, participant_id: b.id, mute: 'TOGGLE_ON', set_gain: true, gain_db: -6 })).error, undefined);
    // c's seat on shard 1 is joined over a frame link: its setting must survive either death too.
    assert.equal((await client.media_('UpdateConferenceParticipant', { conference_id: conf, participant_id: c.id, set_gain: true, gain_db: -3 })).error, undefined);

    const freqs = [400, 700, 1100];
    const talk = async (when: string): Promise<void> => {
      for (const x of [a, b, c]) x.phone.received.length = 0;
      await Promise.all([a, b, c].map((x, i) => x.phone.sendPcm(tone(freqs[i]!, 1500, 8000, 6000), x.port)));
      await sleep(200);
      const level = (x: RtpPeer, f: number): number => {
        const pcm = x.decoded('PCMU');
        return toneDbfs(pcm.subarray(Math.floor(pcm.length * 0.3), Math.floor(pcm.length * 0.7)), 8000, f);
      };
      // a hears c, not b (muted) nor itself; c hears a, not b; b (muted, not deaf) hears a and c.
      assert.ok(level(a.phone, 1100) > -25 && level(a.phone, 700) < -40 && level(a.phone, 400) < -40, `${when}: a hears c ${level(a.phone, 1100).toFixed(1)}, muted b ${level(a.phone, 700).toFixed(1)}, itself ${level(a.phone, 400).toFixed(1)} dBFS`);
      assert.ok(level(c.phone, 400) > -25 && level(c.phone, 700) < -40, `${when}: c hears a ${level(c.phone, 400).toFixed(1)}, muted b ${level(c.phone, 700).toFixed(1)} dBFS`);
      assert.ok(level(b.phone, 400) > -25 && level(b.phone, 1100) > -25, `${when}: muted b hears a ${level(b.phone, 400).toFixed(1)} and c ${level(b.phone, 1100).toFixed(1)} dBFS`);
    };
    const participants = async (): Promise<{ participant_id: string; muted: boolean; gain_db: number }[]> =>
      (await client.media_<{ participants: { participant_id: string; muted: boolean; gain_db: number }[] }>('GetConference', { conference_id: conf })).response?.participants ?? [];
    await talk('before any crash');

    let cGain = -3;
    for (const shard of [1, 0]) {
      const ready = (): number => svc.lines.filter((l) => l.event === 'SHARD_READY' && (l.attributes as Record<string, unknown>)['shard.index'] === shard).length;
      const before = ready();
      await sleep(700); // the calls' latest snapshots reached the supervisor
      const debug = (await (await fetch(svc.url('/debug/resources'))).json()) as { shards: { index: number; pid: number }[] };
      process.kill(debug.shards.find((s) => s.index === shard)!.pid, 'SIGKILL');
      await eventually(() => ready() > before, 20_000);
      await eventually(async () => (await participants()).length === 3, 10_000);
      const listed = await participants();
      const mb: { muted: boolean; gain_db: number } | undefined = listed.find((p) => p.participant_id === b.id);
      assert.deepEqual([mb?.muted, mb?.gain_db], [true, -6], `after shard ${shard} was killed b is ${JSON.stringify(mb)}`);
      const mc: { muted: boolean; gain_db: number } | undefined = listed.find((p) => p.participant_id === c.id);
      assert.deepEqual([mc?.muted, mc?.gain_db], [false, cGain], `after shard ${shard} was killed c is ${JSON.stringify(mc)}`);
      assert.deepEqual(listed.map((p) => p.participant_id).sort(), [a.id, b.id, c.id].sort());
      if (shard === 0) {
        // c left while its shard restarted, and said so: its call did not end.
        const left: { attributes?: unknown }[] = svc.lines.filter((l) => l.event === 'CONFERENCE_LEFT' && (l.attributes as Record<string, unknown>)['conference.participant'] === c.id);
        assert.deepEqual(left.map((l) => (l.attributes as Record<string, unknown>)['reason']), ['media_restarted']);
      }
      await talk(`after shard ${shard} was killed`);
      // Set again between the deaths: c's shard dying next must not bring back an older setting.
      cGain = -9;
      assert.equal((await client.media_('UpdateConferenceParticipant', { conference_id: conf, participant_id: c.id, set_gain: true, gain_db: cGain })).error, undefined);
    }
    assert.equal((await client.media_('EndConference', { conference_id: conf })).error, undefined);
    for (const x of [a, b, c]) await client.media_('ReleasePort', { rtp_port: x.port });
  });

  test('a shard that stops answering (SIGSTOP) is killed after MEDIA_HANG_TIMEOUT_SECONDS and its calls go on', async () => {
    await eventually(async () => {
      const d = (await (await fetch(svc.url('/debug/resources'))).json()) as { shards: { load: { cpu: number } }[] };
      return d.shards.every((sh) => sh.load.cpu < 0.15);
    }, 30_000, 250);
    const calls: { port: number; phone: RtpPeer }[] = [];
    const extra: number[] = [];
    for (let k = 0; calls.length < 3 && k < 40; k++) {
      const r = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: `failover-hung-${process.pid}-${k}@test` });
      assert.equal(r.error, undefined, r.error?.details);
      const port = r.response!.rtp_port;
      if (port < SHARD1_MIN) {
        extra.push(port);
        continue;
      }
      const phone = await RtpPeer.open();
      peers.push(phone);
      assert.equal((await client.media_('PlayAudio', { audio_uri: 'control://enable_echo', server_rtp_port: port, rtp_target_addr: phone.address })).error, undefined);
      calls.push({ port, phone });
    }
    assert.equal(calls.length, 3, 'three calls on shard 1');
    // Caught here: a test that fails half-way closes the phones under the senders.
    const sendErrors: unknown[] = [];
    const talking = calls.map((c) => c.phone.sendPcm(tone(400, 9000, 8000), c.port).catch((e: unknown) => sendErrors.push(e)));
    await sleep(1000); // a snapshot of every call reached the supervisor
    const debug = (await (await fetch(svc.url('/debug/resources'))).json()) as { shards: { index: number; pid: number; restarts: number }[] };
    const victim = debug.shards.find((s) => s.index === 1)!;
    const stoppedAt = performance.now();
    const before = calls.map((c) => c.phone.received.length);
    process.kill(victim.pid, 'SIGSTOP');
    try {
      const hung = await svc.waitForLog((l) => l.event === 'SHARD_HUNG' && (l.attributes as Record<string, unknown>)['shard.pid'] === victim.pid, 15_000);
      const silent = Number((hung.attributes as Record<string, unknown>)['shard.silent_ms']);
      assert.ok(silent >= 3000 && silent < 6000, `killed after ${silent} ms of silence`);
      await svc.waitForLog((l) => l.event === 'SHARD_READY' && (l.attributes as Record<string, unknown>)['shard.restarts'] === victim.restarts + 1, 20_000);
      await sleep(1000);
    } finally {
      // Never left stopped: a failed wait must not leave a frozen process behind.
      try {
        process.kill(victim.pid, 'SIGCONT');
      } catch {}
    }
    for (const [i, c] of calls.entries()) {
      const old = c.phone.received.slice(0, before[i]);
      const fresh = c.phone.received.slice(before[i]).filter((p) => p.at > stoppedAt + 3000);
      assert.ok(fresh.length > 10, `call ${c.port}: ${fresh.length} packets after the stuck shard was replaced`);
      assert.equal(fresh[0]!.ssrc, old.at(-1)!.ssrc, `call ${c.port}: the SSRC changed across the restart`);
      const ahead = seqAhead(old.at(-1)!.seq, fresh[0]!.seq);
      assert.ok(ahead >= 1 && ahead < 1000, `call ${c.port}: sequence ${old.at(-1)!.seq} -> ${fresh[0]!.seq} does not continue`);
    }
    await Promise.all(talking);
    assert.deepEqual(sendErrors, []);
    for (const p of [...calls.map((c) => c.port), ...extra]) await client.media_('ReleasePort', { rtp_port: p });
  });
});
