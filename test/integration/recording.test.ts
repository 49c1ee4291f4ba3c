import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
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

const today = (): string => new Date().toISOString().slice(0, 10).replace(/-/g, '/');

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
    // The caller and the prompt say the same sentence a moment apart, so each window of the
    // mix is two voices: against one of them a correlation near 1/sqrt(2) is what a good mix gives.
    t.diagnostic(describeMatch(assertHoldsReference(mono!, fx.pcm8k, 8000, { what: 'the mono mix', minCorr: 0.5, levelDb: [-6, 6] })));
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
});
