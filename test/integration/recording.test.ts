import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually, metricValue } from '../helpers/grpc-client.ts';
import { speechFixtures, type SpeechFixtures } from '../helpers/audio.ts';
import { assertHoldsReference, describeMatch, type HoldOptions } from '../helpers/reference-match.ts';
import { ffmpegDecodeChannels, ffmpegSendRtp, ffprobe, freeUdpPort } from '../helpers/ffmpeg.ts';
import { RtpPeer } from '../helpers/rtp-peer.ts';
import { S3Server } from '../helpers/s3-server.ts';
import { captureEvents } from '../helpers/amqp.ts';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { wavHeader } from '../../src/codecs/wav.ts';

const today = (): string => new Date().toISOString().slice(0, 10).replace(/-/g, '/');

/**
 * The reference said twice, at the two delays where it correlates best with `mix` (at least
 * 10 ms apart): what a mix of two copies of one sentence must hold.
 */
function twoVoices(mix: Int16Array, ref: Int16Array, rate: number): Int16Array {
  const maxLag = Math.round(rate * 0.8);
  const score = new Float64Array(maxLag);
  for (let lag = 0; lag < maxLag; lag++) {
    let dot = 0;
    for (let i = 0; i < ref.length && i + lag < mix.length; i += 2) dot += ref[i]! * mix[i + lag]!;
    score[lag] = dot;
  }
  const best = (skip: number): number => {
    let at = -1;
    for (let lag = 0; lag < maxLag; lag++) if (Math.abs(lag - skip) > rate / 100 && (at < 0 || score[lag]! > score[at]!)) at = lag;
    return at;
  };
  const first = best(-rate);
  const second = best(first);
  const out = new Int16Array(ref.length + Math.max(first, second));
  for (let i = 0; i < ref.length; i++) {
    out[i + first] = Math.max(-32768, Math.min(32767, out[i + first]! + ref[i]!));
    out[i + second] = Math.max(-32768, Math.min(32767, out[i + second]! + ref[i]!));
  }
  return out;
}

describe('call recording', () => {
  let fx: SpeechFixtures;
  let s3: S3Server;
  let svc: RunningService;
  let client: TestClient;
  let spool: string;
  let fileRoot: string;
  let assets: string;
  let amqp: Awaited<ReturnType<typeof captureEvents>>;
  let n = 0;

  const env = (): Record<string, string> => ({
    ...s3.env,
    ASSETS_BASE_PATH: assets,
    RECORDING_SPOOL_DIR: spool,
    RECORDING_FILE_ROOT: fileRoot,
    RECORDING_MAX_BACKOFF_SECONDS: '1',
    RTP_SERVICE_PORT_MIN: '34000',
    RTP_SERVICE_PORT_MAX: '34999',
    RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:5672',
    RABBITMQ_EXCHANGE: amqp.exchange,
  });

  before(async () => {
    fx = speechFixtures();
    s3 = new S3Server('recordings');
    await s3.start();
    spool = mkdtempSync(join(tmpdir(), 'spool-'));
    fileRoot = mkdtempSync(join(tmpdir(), 'recs-'));
    assets = mkdtempSync(join(tmpdir(), 'assets-'));
    copyFileSync(fx.wav16k, join(assets, 'prompt.wav'));
    amqp = await captureEvents();
    svc = await startService({ env: env() });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    client.close();
    await svc.stop('SIGKILL');
    await s3.stop();
    await amqp.close();
  });

  /** A phone (ffmpeg) sends the speech fixture while the service plays the prompt to it. */
  async function recordCall(opts: { outputUri: string; format?: string; sampleRate?: number; layout?: string }): Promise<{ callId: string; wallMs: number }> {
    const callId = `rec-${process.pid}-${++n}`;
    const port = (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId })).response!.rtp_port;
    const peer = await RtpPeer.open();
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: peer.address });
    const t0 = performance.now();
    const start = await client.media_('StartRecording', {
      server_rtp_port: port,
      output_uri: opts.outputUri,
      call_id: callId,
      trace_id: callId,
      ...(opts.format ? { format: opts.format } : {}),
      ...(opts.sampleRate ? { sample_rate: opts.sampleRate } : {}),
      ...(opts.layout ? { channel_layout: opts.layout } : {}),
    });
    assert.equal(start.error, undefined, start.error?.details);
    await client.media_('PlayAudio', { audio_uri: 'file:///prompt.wav', server_rtp_port: port });
    const sender = ffmpegSendRtp({ wav: fx.wav8k, port, codec: 'PCMU', localPort: await freeUdpPort() });
    assert.equal(await sender.done, 0, sender.stderr());
    await new Promise((r) => setTimeout(r, 500));
    await client.media_('ReleasePort', { rtp_port: port });
    const wallMs = performance.now() - t0;
    peer.close();
    return { callId, wallMs };
  }

  async function fetchObject(prefix: string): Promise<string> {
    const key = await eventually(async () => (await s3.keys(prefix))[0], 30_000, 200);
    const file = join(mkdtempSync(join(tmpdir(), 'obj-')), key.split('/').pop()!);
    writeFileSync(file, await s3.get(key));
    return file;
  }

  /** The caller's speech whole on the left, the prompt's (the same sentence) on the right. */
  function checkChannels(t: TestContext, file: string, opts: Partial<HoldOptions> = {}): void {
    const [left, right] = ffmpegDecodeChannels(file, 2);
    t.diagnostic(`left: ${describeMatch(assertHoldsReference(left!, fx.pcm8k, 8000, { what: 'the left (caller) channel', ...opts }))}`);
    t.diagnostic(`right: ${describeMatch(assertHoldsReference(right!, fx.pcm8k, 8000, { what: 'the right (prompt) channel', ...opts }))}`);
  }

  test('WAV to an S3 prefix: dated key, call-length file, caller left and prompt right, event published', async (t) => {
    const { callId, wallMs } = await recordCall({ outputUri: 's3://recordings/calls' });
    const file = await fetchObject(`calls/${today()}/${callId}.wav`);
    const info = ffprobe(file);
    assert.equal(info.sampleRate, 8000);
    assert.equal(info.channels, 2);
    assert.ok(Math.abs(info.duration * 1000 - wallMs) / wallMs < 0.01, `duration ${info.duration} s vs call ${wallMs / 1000} s`);
    checkChannels(t, file);
    const ev = await eventually(() => amqp.events.find((e) => e.routingKey === 'call.recording.available' && e.body.call_id === callId), 10_000);
    assert.equal(ev.body.recording_uri, `s3://recordings/calls/${today()}/${callId}.wav`);
    assert.equal(ev.body.trace_id, callId);
    assert.match(String(ev.body.public_url), new RegExp(`^http://127\\.0\\.0\\.1:${s3.port}/recordings/calls/`));
    assert.deepEqual(readdirSync(spool), [], 'the spool is emptied once the store confirmed');
  });

  test('MP3 at 16 kHz to an explicit key', async (t) => {
    const key = `explicit/${process.pid}-mp3.mp3`;
    const { wallMs } = await recordCall({ outputUri: `s3://recordings/${key}`, format: 'mp3', sampleRate: 16000 });
    const file = await fetchObject(key);
    const info = ffprobe(file);
    assert.equal(info.codec, 'mp3');
    assert.equal(info.sampleRate, 16000);
    // The container's duration counts the encoder's padding; what decodes is the recording.
    const decodedMs = (ffmpegDecodeChannels(file, 2, 16000)[0]!.length / 16000) * 1000;
    assert.ok(Math.abs(decodedMs - wallMs) / wallMs < 0.01, `decoded ${decodedMs} ms vs call ${wallMs} ms`);
    checkChannels(t, file);
  });

  test('WAV at 16 kHz mono to a local directory', async (t) => {
    const { callId, wallMs } = await recordCall({ outputUri: 'file:///local/', sampleRate: 16000, layout: 'mono' });
    const path = join(fileRoot, 'local', today(), `${callId}.wav`);
    await eventually(() => existsSync(path), 10_000);
    const info = ffprobe(path);
    assert.equal(info.channels, 1);
    assert.equal(info.sampleRate, 16000);
    assert.ok(Math.abs(info.duration * 1000 - wallMs) / wallMs < 0.01);
    const [mono] = ffmpegDecodeChannels(path, 1);
    // The caller and the prompt say the same sentence a moment apart: the mix must hold both,
    // whole, at the two delays where the sentence is found in it.
    const expected = twoVoices(mono!, fx.pcm8k, 8000);
    t.diagnostic(describeMatch(assertHoldsReference(mono!, expected, 8000, { what: 'the mono mix (caller and prompt)' })));
  });

  test('S3 down during the upload: the call goes on, the upload retries, nothing is deleted early', async () => {
    await s3.stop();
    const { callId } = await recordCall({ outputUri: 's3://recordings/outage' });
    await svc.waitForLog((l) => l.event === 'RECORDING_UPLOAD_FAILED' && l.call_id === callId, 15_000);
    const m = await (await fetch(svc.url('/metrics'))).text();
    assert.ok((metricValue(m, 'sentiric_media_recording_uploads_total', { result: 'failed' }) ?? 0) >= 1);
    assert.equal(metricValue(m, 'sentiric_media_recording_uploads_pending'), 1);
    assert.ok(readdirSync(spool).some((f) => f.endsWith('.wav')), 'the spool file waits for the store');
    // Calls keep working meanwhile.
    assert.equal((await client.media_('AllocatePort', { call_id: `during-outage-${n}` })).error, undefined);
    await s3.start();
    await fetchObject(`outage/${today()}/${callId}.wav`);
    await eventually(() => readdirSync(spool).length === 0, 10_000);
  });

  test('bad requests get clear errors', async () => {
    const port = (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: `bad-${++n}` })).response!.rtp_port;
    const cases: [Record<string, unknown>, grpc.status, RegExp][] = [
      [{ output_uri: 'file:///../../etc/' }, grpc.status.INVALID_ARGUMENT, /outside the recordings directory/],
      [{ output_uri: 's3://recordings/x', format: 'ogg' }, grpc.status.INVALID_ARGUMENT, /format must be wav or mp3/],
      [{ output_uri: 's3://Bad_Bucket/x' }, grpc.status.INVALID_ARGUMENT, /invalid S3 bucket/],
      [{ output_uri: 'ftp://x/y' }, grpc.status.INVALID_ARGUMENT, /file:\/\/ or s3:\/\//],
      [{ output_uri: 's3://recordings/x', sample_rate: 11025 }, grpc.status.INVALID_ARGUMENT, /sample_rate must be one of/],
    ];
    for (const [req, code, pattern] of cases) {
      const r = await client.media_('StartRecording', { server_rtp_port: port, ...req });
      assert.equal(r.error?.code, code, JSON.stringify(req));
      assert.match(r.error!.details, pattern);
    }
    assert.equal((await client.media_('StartRecording', { server_rtp_port: port, output_uri: 's3://recordings/twice' })).error, undefined);
    const twice = await client.media_('StartRecording', { server_rtp_port: port, output_uri: 's3://recordings/twice' });
    assert.equal(twice.error?.code, grpc.status.ALREADY_EXISTS);
    assert.equal((await client.media_('StartRecording', { server_rtp_port: 34998, output_uri: 's3://recordings/x' })).error?.code, grpc.status.NOT_FOUND);
    assert.equal((await client.media_<{ success: boolean }>('StopRecording', { server_rtp_port: port })).response?.success, true);
    assert.equal((await client.media_('StopRecording', { server_rtp_port: port })).error?.code, grpc.status.FAILED_PRECONDITION);
    await client.media_('ReleasePort', { rtp_port: port });
    assert.equal((await client.check()).response?.status, 'SERVING');
  });

  test('kill -9 in the middle of a recording: after restart the partial file is repaired and uploaded', async (t) => {
    const callId = `crash-${process.pid}`;
    const port = (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId })).response!.rtp_port;
    await client.media_('StartRecording', { server_rtp_port: port, output_uri: 's3://recordings/crash', call_id: callId });
    const peer = await RtpPeer.open();
    await peer.sendPcm(fx.pcm8k.subarray(0, 8000 * 3), port);
    await new Promise((r) => setTimeout(r, 1200));
    client.close();
    assert.equal(await svc.stop('SIGKILL'), null);
    peer.close();
    assert.ok(readdirSync(spool).some((f) => f.endsWith('.wav')));
    svc = await startService({ env: env() });
    client = new TestClient(svc.grpcPort);
    await svc.waitForLog((l) => l.event === 'RECORDING_RECOVERED' && l.call_id === callId);
    const file = await fetchObject(`crash/${today()}/${callId}.wav`);
    const info = ffprobe(file);
    // Everything up to the last flush (once a second) before the kill survives.
    assert.ok(info.duration >= 2.5 && info.duration <= 5, `recovered ${info.duration} s`);
    const [left] = ffmpegDecodeChannels(file, 2);
    // What was flushed holds the caller's first two seconds, whole.
    t.diagnostic(describeMatch(assertHoldsReference(left!, fx.pcm8k.subarray(0, 8000 * 2), 8000, { what: 'the recovered left channel' })));
  });

  async function restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    client.close();
    await svc.stop(signal);
    svc = await startService({ env: env() });
    client = new TestClient(svc.grpcPort);
  }

  const allocate = async (callId: string): Promise<number> => (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId })).response!.rtp_port;
  const announced = (callId: string): string[] =>
    amqp.events.filter((e) => e.routingKey === 'call.recording.available' && e.body.call_id === callId).map((e) => String(e.body.recording_uri));
  /** The call's entries in the spool: metadata files, and audio files whose metadata is gone. */
  function spoolEntries(callId: string): string[] {
    const names = readdirSync(spool);
    const metas = names.filter((f) => f.endsWith('.json'));
    const ofCall = metas.filter((f) => (JSON.parse(readFileSync(join(spool, f), 'utf8')) as { callId: string }).callId === callId);
    const stray = names.filter((f) => /\.(wav|mp3)$/.test(f) && !metas.includes(f.replace(/\.(wav|mp3)$/, '.json')));
    return [...ofCall, ...stray];
  }
  const spoolIsClear = (callId: string): Promise<true> => eventually(() => spoolEntries(callId).length === 0 || undefined, 20_000, 100);
  const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  /** A spool entry as a process that died would have left it. */
  function leaveInSpool(meta: { id: string; callId: string; state: string; key: string; bucket?: string }, audio: Buffer = Buffer.alloc(0)): void {
    const { id, callId, state, key, bucket = 'recordings' } = meta;
    writeFileSync(join(spool, `${id}.wav`), Buffer.concat([wavHeader({ sampleRate: 8000, channels: 2, dataBytes: audio.length }), audio]));
    writeFileSync(
      join(spool, `${id}.json`),
      JSON.stringify({ id, callId, traceId: callId, tenantId: 'default', destination: { kind: 's3', bucket, key }, format: 'wav', sampleRate: 8000, channels: 2, state, startedAt: new Date().toISOString(), attempts: 0 }),
    );
  }

  test('concurrent StartRecording on one call: one starts, the others get ALREADY_EXISTS, and one recording is stored', async () => {
    const callId = `race-start-${process.pid}`;
    const port = await allocate(callId);
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => client.media_('StartRecording', { server_rtp_port: port, output_uri: 's3://recordings/race-start', call_id: callId })),
    );
    assert.equal(answers.filter((a) => !a.error).length, 1, answers.map((a) => a.error?.details ?? 'OK').join('; '));
    for (const a of answers.filter((x) => x.error)) {
      assert.equal(a.error!.code, grpc.status.ALREADY_EXISTS);
      assert.match(a.error!.details, /already running on the call on port/);
    }
    await client.media_('ReleasePort', { rtp_port: port });
    await fetchObject(`race-start/${today()}/${callId}.wav`);
    await spoolIsClear(callId);
    await settle(1500);
    assert.deepEqual(await s3.keys('race-start/'), [`race-start/${today()}/${callId}.wav`]);
    assert.deepEqual(announced(callId), [`s3://recordings/race-start/${today()}/${callId}.wav`]);
  });

  test('StopRecording while StartRecording is still starting: both answer OK and the recording ends then, not with the call', async () => {
    for (let i = 0; i < 3; i++) {
      const callId = `race-stop-start-${process.pid}-${i}`;
      const port = await allocate(callId);
      const [start, stop] = await Promise.all([
        client.media_('StartRecording', { server_rtp_port: port, output_uri: 's3://recordings/race-stop-start', call_id: callId }),
        client.media_('StopRecording', { server_rtp_port: port }),
      ]);
      assert.equal(start.error, undefined, start.error?.details);
      assert.equal(stop.error, undefined, stop.error?.details);
      // Stored while the call still runs: the stop took effect.
      await fetchObject(`race-stop-start/${today()}/${callId}.wav`);
      assert.equal((await client.media_('StopRecording', { server_rtp_port: port })).error?.code, grpc.status.FAILED_PRECONDITION);
      await client.media_('ReleasePort', { rtp_port: port });
      await spoolIsClear(callId);
      assert.deepEqual(announced(callId), [`s3://recordings/race-stop-start/${today()}/${callId}.wav`]);
    }
  });

  test('two StopRecording at once, and ReleasePort while stopping: each answers OK, one recording is stored', async () => {
    const ids = [`race-stop-twice-${process.pid}`, `race-release-stop-${process.pid}`];
    const ports = await Promise.all(ids.map(allocate));
    for (const [i, port] of ports.entries()) {
      assert.equal((await client.media_('StartRecording', { server_rtp_port: port, output_uri: 's3://recordings/race-stop', call_id: ids[i] })).error, undefined);
    }
    const [a, b] = await Promise.all([client.media_('StopRecording', { server_rtp_port: ports[0] }), client.media_('StopRecording', { server_rtp_port: ports[0] })]);
    assert.equal(a.error, undefined, a.error?.details);
    assert.equal(b.error, undefined, b.error?.details);
    const [stop, release] = await Promise.all([client.media_('StopRecording', { server_rtp_port: ports[1] }), client.media_('ReleasePort', { rtp_port: ports[1] })]);
    assert.equal(stop.error, undefined, stop.error?.details);
    assert.equal(release.error, undefined);
    await client.media_('ReleasePort', { rtp_port: ports[0] });
    for (const id of ids) await spoolIsClear(id);
    await settle(1000);
    for (const id of ids) assert.deepEqual(announced(id), [`s3://recordings/race-stop/${today()}/${id}.wav`]);
  });

  test('ReleasePort while StartRecording is still starting: NOT_FOUND, and no recording is left or stored', async () => {
    const callIds = [0, 1, 2].map((i) => `race-release-start-${process.pid}-${i}`);
    for (const callId of callIds) {
      const port = await allocate(callId);
      const [start] = await Promise.all([
        client.media_('StartRecording', { server_rtp_port: port, output_uri: 's3://recordings/race-release-start', call_id: callId }),
        client.media_('ReleasePort', { rtp_port: port }),
      ]);
      assert.equal(start.error?.code, grpc.status.NOT_FOUND, start.error?.details ?? 'OK');
    }
    for (const callId of callIds) await spoolIsClear(callId);
    await settle(1500);
    assert.deepEqual(await s3.keys('race-release-start/'), []);
  });

  test('a restart never overwrites a stored recording, and announces each recording once', async () => {
    const { callId } = await recordCall({ outputUri: 's3://recordings/keep' });
    const key = `keep/${today()}/${callId}.wav`;
    const good = readFileSync(await fetchObject(key));
    await spoolIsClear(callId);
    // What the losing StartRecording of a race used to leave: a header-only file still recording to the same key.
    const orphan = randomUUID();
    leaveInSpool({ id: orphan, callId, state: 'recording', key });
    // Stored and announced, and the process died before it cleaned the spool.
    const done = randomUUID();
    leaveInSpool({ id: done, callId, state: 'stored', key: `keep/${callId}-done.wav` });
    // Its upload landed, and the process died before it knew.
    const landed = randomUUID();
    const audio = Buffer.alloc(3200, 7);
    leaveInSpool({ id: landed, callId, state: 'finalized', key: `keep/${callId}-landed.wav` }, audio);
    const c = s3.client();
    await c.send(
      new PutObjectCommand({ Bucket: 'recordings', Key: `keep/${callId}-landed.wav`, Body: readFileSync(join(spool, `${landed}.wav`)), Metadata: { 'recording-id': landed } }),
    );
    c.destroy();

    await restart();
    await eventually(() => announced(callId).length >= 3, 20_000);
    await settle(1500);
    assert.ok(Buffer.compare(await s3.get(key), good) === 0, 'the finished recording is intact');
    const alternate = `keep/${today()}/${callId}-${orphan.slice(0, 8)}.wav`;
    assert.deepEqual((await s3.keys('keep/')).sort(), [alternate, key, `keep/${callId}-landed.wav`].sort());
    assert.equal((await s3.get(alternate)).length, 44, 'the orphan is kept under a name of its own');
    assert.deepEqual(announced(callId).sort(), [`s3://recordings/${key}`, `s3://recordings/${alternate}`, `s3://recordings/keep/${callId}-landed.wav`].sort());
    await spoolIsClear(callId);

    await restart();
    await settle(1500);
    assert.equal(announced(callId).length, 3, 'nothing is announced again');
    assert.equal((await s3.keys('keep/')).length, 3);
  });

  test('an upload the store refuses for good is parked as failed, kept, and tried again at the next start', async () => {
    const bucket = `missing-${process.pid}`;
    const { callId } = await recordCall({ outputUri: `s3://${bucket}/calls` });
    const parked = await svc.waitForLog((l) => l.event === 'RECORDING_UPLOAD_FAILED_PERMANENTLY' && l.call_id === callId, 30_000);
    assert.equal(parked.attributes?.['recording.attempts'], 3);
    const failures = (): number => svc.lines.filter((l) => l.call_id === callId && String(l.event).startsWith('RECORDING_UPLOAD_FAILED')).length;
    const seen = failures();
    await settle(3000);
    assert.equal(failures(), seen, 'no attempt after it was parked');
    let m = await (await fetch(svc.url('/metrics'))).text();
    assert.equal(metricValue(m, 'sentiric_media_recording_uploads_total', { result: 'failed_permanently' }), 1);
    assert.equal(metricValue(m, 'sentiric_media_recordings_failed'), 1);
    assert.equal(metricValue(m, 'sentiric_media_recording_uploads_pending'), 0);
    const metaFile = spoolEntries(callId)[0]!;
    assert.match(metaFile, /\.json$/);
    const meta = JSON.parse(readFileSync(join(spool, metaFile), 'utf8')) as { state: string; attempts: number };
    assert.equal(meta.state, 'failed');
    assert.equal(meta.attempts, 3);
    assert.ok(existsSync(join(spool, metaFile.replace(/\.json$/, '.wav'))), 'the audio is kept');

    // The operator creates the bucket and restarts the service.
    const c = s3.client();
    await c.send(new CreateBucketCommand({ Bucket: bucket }));
    c.destroy();
    await restart();
    const stored = await svc.waitForLog((l) => l.event === 'RECORDING_STORED' && l.call_id === callId, 20_000);
    assert.equal(stored.attributes?.['recording.attempts'], 4, 'attempts count across restarts');
    await spoolIsClear(callId);
    assert.deepEqual(announced(callId), [`s3://${bucket}/calls/${today()}/${callId}.wav`]);
    m = await (await fetch(svc.url('/metrics'))).text();
    assert.equal(metricValue(m, 'sentiric_media_recordings_failed'), 0);
  });
});
