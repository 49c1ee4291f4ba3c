import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import * as grpc from '@grpc/grpc-js';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually } from '../helpers/grpc-client.ts';
import { concatPcm, rmsDb, speechFixtures, tone, type SpeechFixtures } from '../helpers/audio.ts';
import { assertHoldsReference, describeMatch } from '../helpers/reference-match.ts';
import { ffmpegReceiveRtp, ffmpegSendRtp, freeUdpPort } from '../helpers/ffmpeg.ts';
import { RtpPeer } from '../helpers/rtp-peer.ts';
import { TwilioMediaStreamsPeer, muLawDecode } from '../helpers/twilio-peer.ts';
import { decodeG711 } from '../../src/codecs/g711.ts';
import { OpusFrameDecoder, OpusFrameEncoder } from '../../src/codecs/opus.ts';
import { dominantHz } from '../helpers/audio.ts';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { makeTestPki, type TestPki } from '../helpers/certs.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const bytes = (pcm: Int16Array): Buffer => Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
const pcmOf = (b: Buffer): Int16Array => new Int16Array(new Uint8Array(b).buffer);

/** A backend of the raw protocol: every message it received, with when. */
interface RawConn {
  ws: WebSocket;
  url: string;
  texts: { at: number; msg: Record<string, unknown> }[];
  frames: { at: number; data: Buffer }[];
  closed: Promise<{ code: number; reason: string }>;
}

class RawBackend {
  readonly wss: WebSocketServer;
  readonly conns: RawConn[] = [];
  #waiters: ((c: RawConn) => void)[] = [];

  private constructor(wss: WebSocketServer) {
    this.wss = wss;
    wss.on('connection', (ws, req) => {
      let closed!: (v: { code: number; reason: string }) => void;
      const c: RawConn = { ws, url: req.url ?? '', texts: [], frames: [], closed: new Promise((r) => (closed = r)) };
      ws.on('message', (data: RawData, binary: boolean) => {
        const b = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
        if (binary) c.frames.push({ at: performance.now(), data: b });
        else c.texts.push({ at: performance.now(), msg: JSON.parse(b.toString('utf8')) as Record<string, unknown> });
      });
      ws.on('close', (code, reason) => closed({ code, reason: reason.toString() }));
      ws.on('error', () => {});
      this.conns.push(c);
      for (const w of this.#waiters.splice(0)) w(c);
    });
  }

  static async listen(): Promise<RawBackend> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.once('listening', r));
    return new RawBackend(wss);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/stt`;
  }

  #handed = 0;

  /** The next connection not handed out yet (it may have come already). */
  next(ms = 5000): Promise<RawConn> {
    const n = ++this.#handed;
    if (this.conns.length >= n) return Promise.resolve(this.conns[n - 1]!);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no connection from the service')), ms);
      const w = (): void => {
        if (this.conns.length >= n) {
          clearTimeout(t);
          resolve(this.conns[n - 1]!);
        } else this.#waiters.push(w);
      };
      this.#waiters.push(w);
    });
  }

  close(): Promise<void> {
    for (const c of this.conns) c.ws.terminate();
    return new Promise((r) => this.wss.close(() => r()));
  }
}

describe('media streams: call audio over WebSocket, both ways', () => {
  let svc: RunningService;
  let client: TestClient;
  let fx: SpeechFixtures;
  let raw: RawBackend;
  let twilio: TwilioMediaStreamsPeer;
  let pki: TestPki;
  let n = 0;
  const open = async (): Promise<{ port: number; callId: string }> => {
    const callId = `ws-${process.pid}-${++n}@test`;
    const r = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId });
    assert.equal(r.error, undefined, r.error?.details);
    return { port: r.response!.rtp_port, callId };
  };
  const start = (req: Record<string, unknown>) => client.media_<{ stream_id: string }>('StartMediaStream', req);
  const metric = async (re: RegExp): Promise<number> => Number(re.exec(await (await fetch(svc.url('/metrics'))).text())?.[1] ?? 0);

  before(async () => {
    fx = speechFixtures();
    raw = await RawBackend.listen();
    twilio = await TwilioMediaStreamsPeer.listen({ path: '/twilio' });
    pki = makeTestPki();
    svc = await startService({
      // The platform's CA is trusted the way an operator adds one: Node's extra CA certificates.
      env: { RTP_SERVICE_PORT_MIN: '37000', RTP_SERVICE_PORT_MAX: '37499', LOG_LEVEL: 'info', MEDIA_STREAM_ALLOWED_HOSTS: '*', MEDIA_STREAM_ALLOWED_CIDRS: '127.0.0.1/32', NODE_EXTRA_CA_CERTS: pki.caCert },
    });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    client?.close();
    await svc?.stop('SIGKILL');
    await raw?.close();
    await twilio?.close();
  });

  test('raw: the caller’s speech reaches the backend as 16 kHz L16 frames, and the backend’s speech reaches the phone', async (t) => {
    const { port, callId } = await open();
    const receiver = await ffmpegReceiveRtp({ codec: 'PCMU' });
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: `127.0.0.1:${receiver.port}` });
    const r = await start({
      call_id: callId,
      url: raw.url,
      headers: { authorization: 'Bearer backend-secret' },
      query: { session: 'abc' },
      format: { protocol: 'MEDIA_STREAM_PROTOCOL_RAW', sample_rate: 16000, bidirectional: true, custom_parameters: { agent: 'support' } },
    });
    assert.equal(r.error, undefined, r.error?.details);
    assert.match(r.response!.stream_id, /^MZ[0-9a-f]{32}$/);
    const conn = await raw.next();
    assert.match(conn.url, /^\/stt\?session=abc$/);
    await eventually(() => conn.texts.length >= 1, 2000);
    const startMsg = conn.texts[0]!.msg;
    assert.deepEqual(startMsg, {
      event: 'start',
      streamId: r.response!.stream_id,
      callId,
      source: 'caller',
      format: { encoding: 'L16', sampleRate: 16000, channels: 1, frameMs: 20 },
      bidirectional: true,
      customParameters: { agent: 'support' },
    });

    const sender = ffmpegSendRtp({ wav: fx.wav8k, port, codec: 'PCMU', localPort: await freeUdpPort() });
    assert.equal(await sender.done, 0, sender.stderr());
    await sleep(300);
    for (const f of conn.frames) assert.equal(f.data.length, 640);
    const heard = concatPcm(conn.frames.map((f) => pcmOf(f.data)));
    t.diagnostic(`backend: ${describeMatch(assertHoldsReference(heard, fx.pcm16k, 16000, { what: 'the caller as the raw backend got it' }))}`);

    // The backend speaks: 16 kHz L16 in 100 ms messages, ahead of real time.
    const speech = fx.pcm16k;
    for (let off = 0; off < speech.length; off += 1600) conn.ws.send(bytes(speech.subarray(off, Math.min(speech.length, off + 1600))));
    conn.ws.send(JSON.stringify({ event: 'mark', name: 'end-of-speech' }));
    await eventually(() => conn.texts.some((m) => m.msg.event === 'mark'), (speech.length / 16) + 3000);
    assert.deepEqual(conn.texts.find((m) => m.msg.event === 'mark')!.msg, { event: 'mark', name: 'end-of-speech', cleared: false });
    await sleep(200);
    const got = await receiver.stop();
    t.diagnostic(`phone: ${describeMatch(assertHoldsReference(got, fx.pcm8k, 8000, { what: 'the raw backend’s speech as the phone heard it' }))}`);

    await client.media_('ReleasePort', { rtp_port: port });
    const closed = await conn.closed;
    assert.equal(closed.code, 1000);
    assert.deepEqual(conn.texts.at(-1)!.msg, { event: 'stop', reason: 'call_ended' });
  });

  test('twilio: a backend written from Twilio’s schema gets both tracks, plays speech, and its marks and clear work', async (t) => {
    const { port, callId } = await open();
    const phone = await RtpPeer.open();
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: phone.address });
    const r = await start({
      server_rtp_port: port,
      url: `${twilio.url}`,
      format: { source: 'AUDIO_SOURCE_STEREO', bidirectional: true, custom_parameters: { tenant: 'acme' } },
    });
    assert.equal(r.error, undefined, r.error?.details);
    const conn = await twilio.nextConnection();
    const info = await conn.start();
    assert.equal(info.streamSid, r.response!.stream_id);
    assert.equal(info.callSid, callId);
    assert.deepEqual(info.tracks, ['inbound', 'outbound']);
    assert.deepEqual(info.customParameters, { tenant: 'acme' });
    assert.deepEqual(info.mediaFormat, { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 });

    const caller = phone.sendPcm(fx.pcm8k, port);
    await caller;
    await sleep(300);
    t.diagnostic(`inbound: ${describeMatch(assertHoldsReference(conn.audio('inbound'), fx.pcm8k, 8000, { what: 'the caller as the Twilio backend got it' }))}`);

    // The backend speaks, then marks the end; the phone hears it and the mark comes back after its last packet.
    const before = phone.received.length;
    conn.sendAudio(fx.pcm8k);
    conn.sendMark('greeting-done');
    await eventually(() => conn.marks.some((m) => m.name === 'greeting-done'), fx.pcm8k.length / 8 + 3000);
    const markAt = conn.marks.find((m) => m.name === 'greeting-done')!.at;
    const spoken = phone.received.slice(before).filter((p) => rmsDb(decodeG711('PCMU', p.payload)) > -50);
    assert.ok(spoken.length > 0);
    const lastSpoken = spoken.at(-1)!.at;
    assert.ok(markAt >= lastSpoken - 1, `the mark came back ${(lastSpoken - markAt).toFixed(1)} ms before the last marked audio reached the phone`);
    const played = concatPcm(phone.received.slice(before).map((p) => decodeG711('PCMU', p.payload)));
    t.diagnostic(`phone: ${describeMatch(assertHoldsReference(played, fx.pcm8k, 8000, { what: 'the Twilio backend’s speech as the phone heard it' }))}`);
    // What the service sent the phone, as the outbound track.
    t.diagnostic(`outbound: ${describeMatch(assertHoldsReference(conn.audio('outbound'), fx.pcm8k, 8000, { what: 'the outbound track' }))}`);

    // Barge-in: five seconds of tone queued, cleared after half a second: the phone hears it stop within a frame.
    conn.sendAudio(tone(600, 5000, 8000));
    await sleep(500);
    const clearAt = performance.now();
    conn.sendClear();
    await sleep(400);
    const loud = phone.received.filter((p) => p.at > clearAt - 100 && rmsDb(decodeG711('PCMU', p.payload)) > -40);
    const lastLoud = loud.at(-1)!.at - clearAt;
    // Negative: the clear reached the service before its next tick, whose packet was already silent.
    t.diagnostic(`clear: last tone packet ${lastLoud.toFixed(1)} ms after the clear was sent`);
    assert.ok(lastLoud <= 25, `tone still reached the phone ${lastLoud.toFixed(1)} ms after clear`);

    await client.media_('ReleasePort', { rtp_port: port });
    const closed = await conn.closed;
    phone.close();
    assert.equal(closed.code, 1000);
    assert.deepEqual(conn.problems, [], `the stream departs from Twilio's schema:\n${conn.problems.join('\n')}`);
    assert.ok(conn.messages.at(-1)!.msg.event === 'stop', 'the last message is stop');
  });

  test('wss: a backend whose certificate verifies is dialled; one whose certificate does not is refused', async () => {
    const serve = async (cert: string, key: string): Promise<{ url: string; got: string[]; close: () => void }> => {
      const server = createHttpsServer({ cert: readFileSync(cert), key: readFileSync(key) });
      const wss = new WebSocketServer({ server });
      const got: string[] = [];
      wss.on('connection', (ws) => ws.on('message', (d: RawData, binary: boolean) => !binary && got.push(String(d))));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { url: `wss://127.0.0.1:${(server.address() as AddressInfo).port}/tls`, got, close: () => (wss.close(), server.close()) };
    };
    const good = await serve(pki.serverCert, pki.serverKey);
    const rogue = await serve(pki.rogueClientCert, pki.rogueClientKey);
    try {
      const { port } = await open();
      const ok = await start({ server_rtp_port: port, url: good.url, format: { protocol: 'MEDIA_STREAM_PROTOCOL_RAW' } });
      assert.equal(ok.error, undefined, ok.error?.details);
      await eventually(() => good.got.length >= 1, 2000);
      assert.equal((JSON.parse(good.got[0]!) as { event: string }).event, 'start');
      const bad = await start({ server_rtp_port: port, url: rogue.url, format: { protocol: 'MEDIA_STREAM_PROTOCOL_RAW' } });
      assert.equal(bad.error?.code, grpc.status.UNAVAILABLE);
      assert.match(bad.error!.details, /certificate/i);
      assert.equal(rogue.got.length, 0);
      await client.media_('ReleasePort', { rtp_port: port });
    } finally {
      good.close();
      rogue.close();
    }
  });

  test('raw Opus: one 20 ms packet per message out, and Opus packets from the backend are heard', async () => {
    const { port } = await open();
    const phone = await RtpPeer.open();
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: phone.address });
    const r = await start({ server_rtp_port: port, url: raw.url, format: { protocol: 'MEDIA_STREAM_PROTOCOL_RAW', encoding: 'AUDIO_ENCODING_OPUS', sample_rate: 16000, bidirectional: true } });
    assert.equal(r.error, undefined, r.error?.details);
    const conn = await raw.next();
    await phone.sendPcm(tone(500, 1200, 8000), port);
    await eventually(() => conn.frames.length >= 50, 2000);
    assert.deepEqual((conn.texts[0]!.msg as { format: unknown }).format, { encoding: 'OPUS', sampleRate: 16000, channels: 1, frameMs: 20 });
    const dec = new OpusFrameDecoder({ sampleRate: 16000 });
    const heard = concatPcm(conn.frames.map((f) => dec.decode(f.data)));
    assert.equal(heard.length, conn.frames.length * 320, 'each message is one 20 ms packet');
    const hz = dominantHz(heard.subarray(3200, 16000), 16000);
    assert.ok(Math.abs(hz - 500) < 20, `the backend decoded ${hz.toFixed(0)} Hz, not the caller's 500 Hz`);
    const before = phone.received.length;
    const enc = new OpusFrameEncoder({ sampleRate: 16000 });
    const back = tone(700, 1000, 16000);
    for (let off = 0; off + 320 <= back.length; off += 320) conn.ws.send(enc.encode(back.subarray(off, off + 320)));
    await eventually(() => phone.received.length - before >= 45, 3000);
    const played = concatPcm(phone.received.slice(before + 5, before + 45).map((p) => decodeG711('PCMU', p.payload)));
    const back8 = dominantHz(played, 8000);
    assert.ok(Math.abs(back8 - 700) < 20, `the phone heard ${back8.toFixed(0)} Hz, not the backend's 700 Hz`);
    phone.close();
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('a DTMF digit of the caller reaches the backend', async () => {
    const { port } = await open();
    const r = await start({ server_rtp_port: port, url: twilio.url });
    assert.equal(r.error, undefined, r.error?.details);
    const conn = await twilio.nextConnection();
    await conn.start();
    const phone = await RtpPeer.open();
    await phone.sendPcm(tone(400, 200, 8000), port);
    await phone.sendDtmf('7#', port);
    await eventually(() => conn.dtmf.length >= 2, 3000);
    assert.deepEqual(conn.dtmf, ['7', '#']);
    await client.media_('ReleasePort', { rtp_port: port });
    await conn.closed;
    phone.close();
    assert.deepEqual(conn.problems, []);
  });

  test('a backend connects in with a token; a bad token is refused with 401', async () => {
    const { port, callId } = await open();
    const tok = await client.media_<{ token: string; path: string; expires_at_unix_ms: number }>('CreateMediaStreamToken', {
      call_id: callId,
      format: { protocol: 'MEDIA_STREAM_PROTOCOL_RAW', encoding: 'AUDIO_ENCODING_PCMU' },
    });
    assert.equal(tok.error, undefined, tok.error?.details);
    const wsUrl = `ws://127.0.0.1:${svc.httpPort}${tok.response!.path}?call=${encodeURIComponent(callId)}`;
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${wsUrl}&token=${tok.response!.token.slice(0, -2)}xx`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => {});
    });
    assert.equal(refused, 401);
    // A room token is no media stream token.
    const room = await client.media_<{ token: string }>('CreateRoomToken', { room_id: callId });
    const asRoom = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${wsUrl}&token=${room.response!.token}`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => {});
    });
    assert.equal(asRoom, 401);

    const ws = new WebSocket(`${wsUrl}&token=${tok.response!.token}`);
    const texts: Record<string, unknown>[] = [];
    const frames: Buffer[] = [];
    ws.on('message', (d: RawData, binary: boolean) => (binary ? frames.push(d as Buffer) : texts.push(JSON.parse(String(d)) as Record<string, unknown>)));
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    const phone = await RtpPeer.open();
    await phone.sendPcm(tone(500, 1000, 8000), port);
    await eventually(() => frames.length >= 40, 2000);
    assert.equal(texts[0]!.event, 'start');
    assert.deepEqual(texts[0]!.format, { encoding: 'PCMU', sampleRate: 8000, channels: 1, frameMs: 20 });
    for (const f of frames) assert.equal(f.length, 160);
    assert.ok(rmsDb(muLawDecode(Buffer.concat(frames.slice(5, 40)))) > -30);
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    await client.media_('ReleasePort', { rtp_port: port });
    assert.equal(await closed, 1000);
    phone.close();
  });

  test('refused: a private address by default, a URL that is not ws, bad headers; the call is untouched', async () => {
    const { port } = await open();
    const loop2 = await start({ server_rtp_port: port, url: 'ws://127.0.0.2:9/x' });
    assert.equal(loop2.error?.code, grpc.status.PERMISSION_DENIED);
    assert.match(loop2.error!.details, /private, loopback or link-local/);
    const meta = await start({ server_rtp_port: port, url: 'ws://169.254.169.254/latest' });
    assert.equal(meta.error?.code, grpc.status.PERMISSION_DENIED);
    const v6 = await start({ server_rtp_port: port, url: 'ws://[::1]:9/' });
    assert.equal(v6.error?.code, grpc.status.PERMISSION_DENIED);
    const http = await start({ server_rtp_port: port, url: 'http://127.0.0.1/' });
    assert.equal(http.error?.code, grpc.status.INVALID_ARGUMENT);
    const creds = await start({ server_rtp_port: port, url: 'ws://user:pw@127.0.0.1/' });
    assert.equal(creds.error?.code, grpc.status.INVALID_ARGUMENT);
    const hdr = await start({ server_rtp_port: port, url: raw.url, headers: { 'sec-websocket-key': 'x' } });
    assert.equal(hdr.error?.code, grpc.status.INVALID_ARGUMENT);
    const opusTwilio = await start({ server_rtp_port: port, url: twilio.url, format: { encoding: 'AUDIO_ENCODING_OPUS' } });
    assert.equal(opusTwilio.error?.code, grpc.status.INVALID_ARGUMENT);
    const none = await start({ url: raw.url });
    assert.equal(none.error?.code, grpc.status.INVALID_ARGUMENT);
    const gone = await start({ call_id: 'no-such-call@x', url: raw.url });
    assert.equal(gone.error?.code, grpc.status.NOT_FOUND);
    const closedPort = await start({ server_rtp_port: port, url: 'ws://127.0.0.1:9/' });
    assert.equal(closedPort.error?.code, grpc.status.UNAVAILABLE);
    // Still a live call.
    const phone = await RtpPeer.open();
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: phone.address });
    const play = await client.media_('PlayAudio', { audio_uri: `data:audio/l16;rate=8000;base64,${bytes(tone(440, 300, 8000)).toString('base64')}`, server_rtp_port: port });
    assert.equal(play.error, undefined, play.error?.details);
    await eventually(() => phone.received.length >= 10, 3000);
    phone.close();
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('malformed messages from the backend close its connection with 1007 or 1003; the call goes on', async () => {
    const { port } = await open();
    const phone = await RtpPeer.open();
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: phone.address });
    const cases: { send: string | Buffer; binary: boolean; code: number }[] = [
      { send: '{not json', binary: false, code: 1007 },
      { send: JSON.stringify({ event: 'media', streamSid: 'x', media: { payload: '%%%' } }), binary: false, code: 1007 },
      { send: JSON.stringify({ event: 'mark', mark: { name: 42 } }), binary: false, code: 1007 },
      { send: Buffer.from([1, 2, 3]), binary: true, code: 1003 },
    ];
    for (const c of cases) {
      const r = await start({ server_rtp_port: port, url: twilio.url, format: { bidirectional: true } });
      assert.equal(r.error, undefined, r.error?.details);
      const conn = await twilio.nextConnection();
      await conn.start();
      conn.sendRaw(c.send, { binary: c.binary });
      const closed = await conn.closed;
      assert.equal(closed.code, c.code, `${String(c.send).slice(0, 40)}: closed with ${closed.code} ${closed.reason}`);
    }
    const refused = await metric(/^sentiric_media_media_stream_messages_refused_total\{protocol="twilio"\} (\S+)$/m);
    assert.ok(refused >= cases.length);
    const play = await client.media_('PlayAudio', { audio_uri: `data:audio/l16;rate=8000;base64,${bytes(tone(440, 300, 8000)).toString('base64')}`, server_rtp_port: port });
    assert.equal(play.error, undefined, play.error?.details);
    await eventually(() => phone.received.length >= 10, 3000);
    phone.close();
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('a backend that stops reading: the call’s outbound cadence holds, the stream drops its oldest frames, counted', async (t) => {
    const { port } = await open();
    const phone = await RtpPeer.open();
    await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: phone.address });
    const dropped0 = await metric(/^sentiric_media_fork_frames_dropped_total (\S+)$/m);
    // 48 kHz stereo L16: 3840 bytes every 20 ms, so the socket buffers fill within seconds.
    const r = await start({ server_rtp_port: port, url: raw.url, format: { protocol: 'MEDIA_STREAM_PROTOCOL_RAW', source: 'AUDIO_SOURCE_STEREO', sample_rate: 48000 } });
    assert.equal(r.error, undefined, r.error?.details);
    const conn = await raw.next();
    (conn.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    try {
      const echo = await client.media_('PlayAudio', { audio_uri: `data:audio/l16;rate=8000;base64,${bytes(tone(440, 8000, 8000)).toString('base64')}`, server_rtp_port: port });
      assert.equal(echo.error, undefined);
      await phone.sendPcm(tone(300, 8000, 8000), port);
      const pkts = phone.received.filter((p) => p.payloadType === 0);
      const gaps = pkts.slice(1).map((p, i) => p.at - pkts[i]!.at).sort((a, b) => a - b);
      const p99 = gaps[Math.floor(gaps.length * 0.99)]!;
      t.diagnostic(`outbound intervals: ${pkts.length} packets, median ${gaps[gaps.length >> 1]!.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
      assert.ok(pkts.length >= 380, `${pkts.length} packets in 8 s`);
      assert.ok(p99 < 45, `outbound p99 interval ${p99.toFixed(1)} ms while the backend stalled`);
      const dropped = (await metric(/^sentiric_media_fork_frames_dropped_total (\S+)$/m)) - dropped0;
      t.diagnostic(`frames dropped for the stalled backend: ${dropped}`);
      assert.ok(dropped > 0, 'no frame was counted dropped for a backend that stopped reading');
    } finally {
      // A failed check must not leave the phone's socket or the stalled backend holding the process.
      phone.close();
      conn.ws.terminate();
      await client.media_('ReleasePort', { rtp_port: port });
    }
  });

  test('a dropped connection is dialled again with backoff, reported once per drop; the call goes on', async () => {
    const { port, callId } = await open();
    const r = await start({ server_rtp_port: port, url: raw.url, format: { protocol: 'MEDIA_STREAM_PROTOCOL_RAW' }, redial_attempts: 3 });
    assert.equal(r.error, undefined, r.error?.details);
    const first = await raw.next();
    await eventually(() => first.texts.length >= 1, 2000);
    first.ws.terminate();
    const second = await raw.next();
    await eventually(() => second.texts.length >= 1, 2000);
    assert.equal(second.texts[0]!.msg.event, 'start');
    assert.equal(second.texts[0]!.msg.streamId, r.response!.stream_id);
    const published = await svc.waitForLog((l) => l.event === 'PLATFORM_EVENT' && (l.attributes as Record<string, unknown>)['event.type'] === 'call.media.stream.disconnected' && JSON.stringify(l.attributes).includes(r.response!.stream_id));
    const body = (published.attributes as { 'event.body': { payload_json: string } })['event.body'];
    assert.deepEqual({ ...JSON.parse(body.payload_json), code: 0 }, { callId, streamId: r.response!.stream_id, code: 0, reason: '', redialing: true });
    const stop = await client.media_('StopMediaStream', { server_rtp_port: port, stream_id: r.response!.stream_id });
    assert.equal(stop.error, undefined, stop.error?.details);
    const closed = await second.closed;
    assert.equal(closed.code, 1000);
    assert.deepEqual(second.texts.at(-1)!.msg, { event: 'stop', reason: 'stopped' });
    const again = await client.media_('StopMediaStream', { server_rtp_port: port, stream_id: r.response!.stream_id });
    assert.equal(again.error?.code, grpc.status.NOT_FOUND);
    await client.media_('ReleasePort', { rtp_port: port });
  });
});

describe('media streams with the defaults', () => {
  test('nothing may be dialled until the operator allows a destination', async () => {
    const svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '37500', RTP_SERVICE_PORT_MAX: '37599' } });
    const client = new TestClient(svc.grpcPort);
    try {
      const port = (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: `ws-default-${process.pid}` })).response!.rtp_port;
      const r = await client.media_('StartMediaStream', { server_rtp_port: port, url: 'wss://stt.example.com/stream' });
      assert.equal(r.error?.code, grpc.status.FAILED_PRECONDITION);
      assert.match(r.error!.details, /MEDIA_STREAM_ALLOWED_HOSTS/);
    } finally {
      client.close();
      await svc.stop('SIGKILL');
    }
  });
});
