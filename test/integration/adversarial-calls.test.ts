import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually, metricValue } from '../helpers/grpc-client.ts';
import { RtpPeer } from '../helpers/rtp-peer.ts';
import { buildRtp } from '../../src/rtp-bridge/rtp-packet.ts';
import { encodeG711 } from '../../src/codecs/g711.ts';
import { captureEvents } from '../helpers/amqp.ts';

type Stream = grpc.ClientReadableStream<Record<string, unknown>>;
type Duplex = grpc.ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;

const tone = (hz: number, ms: number, rate: number, amp = 8000): Int16Array => Int16Array.from({ length: (rate * ms) / 1000 }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * hz * i) / rate)));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every socket a test opens, closed in `after` even when an assertion failed half-way. */
const opened = new Set<{ close(): void }>();
const tracked = <T extends { close(): void }>(x: T): T => (opened.add(x), x);
const closeAll = (): void => {
  for (const x of opened) {
    try {
      x.close();
    } catch {
      // already closed
    }
  }
  opened.clear();
};

async function udpSocket(): Promise<Socket> {
  const s = tracked(createSocket('udp4'));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return s;
}

/** A paced phone with its own SSRC and sequence, so a test can move it to another socket. */
class Phone {
  seq = 2000;
  ts = 80_000;
  readonly ssrc = 0x1234abcd;
  socket: Socket;
  constructor(socket: Socket) {
    this.socket = socket;
  }
  async talk(port: number, packets: number, pt = 0): Promise<void> {
    const payload = encodeG711('PCMU', tone(400, 20, 8000));
    for (let k = 0; k < packets; k++) {
      this.seq = (this.seq + 1) & 0xffff;
      this.ts = (this.ts + 160) >>> 0;
      this.socket.send(buildRtp({ marker: false, payloadType: pt, sequenceNumber: this.seq, timestamp: this.ts, ssrc: this.ssrc }, payload), port, '127.0.0.1');
      await sleep(20);
    }
  }
}

describe('a call under attack and careless clients', () => {
  let svc: RunningService;
  let client: TestClient;
  let amqp: Awaited<ReturnType<typeof captureEvents>>;
  let n = 0;
  const newCallId = (): string => `adv-${process.pid}-${++n}@test`;
  const allocate = async (id = newCallId(), md: Record<string, string> = {}): Promise<number> => {
    const r = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: id }, md);
    assert.equal(r.error, undefined, r.error?.details);
    return r.response!.rtp_port;
  };
  const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> => metricValue(await (await fetch(svc.url('/metrics'))).text(), name, labels) ?? 0;
  const play = (port: number, uri: string, target = '') => client.media_<{ success: boolean }>('PlayAudio', { audio_uri: uri, server_rtp_port: port, rtp_target_addr: target });
  const silenceUri = (ms: number): string => `data:audio/pcm;base64,${Buffer.from(tone(300, ms, 8000).buffer).toString('base64')}`;

  before(async () => {
    amqp = await captureEvents();
    svc = await startService({
      env: {
        RTP_SERVICE_PORT_MIN: '37000',
        RTP_SERVICE_PORT_MAX: '37999',
        LOG_LEVEL: 'info',
        RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:5672',
        RABBITMQ_EXCHANGE: amqp.exchange,
      },
    });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    closeAll();
    client.close();
    await svc.stop('SIGKILL');
    await amqp.close();
  });

  test('RTP bleed: a sprayer never receives a quiet call\'s audio nor changes the codec the phone gets', async () => {
    const port = await allocate();
    const phone = new Phone(await udpSocket());
    const got: { pt: number; at: number }[] = [];
    // RTCP (the service's reports, on the RTP port) is not what the phone hears.
    phone.socket.on('message', (m) => m[1]! >= 192 && m[1]! <= 223 ? undefined : got.push({ pt: m[1]! & 0x7f, at: performance.now() }));
    await phone.talk(port, 10);
    // The caller goes quiet (on hold, listening) while a 4 s prompt plays to it.
    assert.equal((await play(port, silenceUri(4000))).response?.success, true);
    await sleep(1500);
    const attacker = await udpSocket();
    const stolen: Buffer[] = [];
    attacker.on('message', (m) => stolen.push(m));
    const foreignBefore = await metric('sentiric_media_rtp_foreign_packets_total');
    const pcma = encodeG711('PCMA', tone(1000, 20, 8000));
    for (let k = 0; k < 50; k++) {
      attacker.send(buildRtp({ marker: k === 0, payloadType: 8, sequenceNumber: k, timestamp: k * 160, ssrc: 0xdeadbeef }, pcma), port, '127.0.0.1');
      await sleep(10);
    }
    const sprayedAt = performance.now();
    await sleep(600);
    assert.equal(stolen.length, 0, `the attacker received ${stolen.length} packets of the call`);
    const after = got.filter((g) => g.at > sprayedAt);
    assert.ok(after.length >= 20, `the phone still hears the prompt (${after.length} packets after the spray)`);
    assert.ok(after.every((g) => g.pt === 0), `the phone still gets PCMU, got ${[...new Set(after.map((g) => g.pt))]}`);
    assert.equal((await metric('sentiric_media_rtp_foreign_packets_total')) - foreignBefore, 50, 'every foreign packet counted');
    attacker.close();
    phone.socket.close();
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('a phone behind a NAT that rebinds (same SSRC, sequence continuing) is followed to its new port', async () => {
    const port = await allocate();
    const phone = new Phone(await udpSocket());
    await phone.talk(port, 5);
    await play(port, silenceUri(3000));
    await sleep(200);
    phone.socket.close();
    phone.socket = await udpSocket();
    const heard: Buffer[] = [];
    phone.socket.on('message', (m) => heard.push(m));
    await phone.talk(port, 5);
    await eventually(() => heard.length >= 20, 3000);
    assert.ok((await metric('sentiric_media_rtp_source_moves_total')) >= 1);
    phone.socket.close();
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('10,000 random, truncated and mutated datagrams against a live echo call: the call keeps echoing, nothing crashes', async () => {
    const port = await allocate();
    const phone = new Phone(await udpSocket());
    const echoed: Buffer[] = [];
    phone.socket.on('message', (m) => echoed.push(m));
    await phone.talk(port, 3);
    assert.equal((await play(port, 'control://enable_echo')).response?.success, true);
    const talking = phone.talk(port, 150);
    const fuzzer = await udpSocket();
    const valid = buildRtp({ marker: false, payloadType: 0, sequenceNumber: 1, timestamp: 1, ssrc: 1 }, new Uint8Array(160));
    for (let i = 0; i < 10_000; i++) {
      let d: Buffer;
      switch (i % 5) {
        case 0:
          d = randomBytes(Math.floor(Math.random() * 1500));
          break;
        case 1:
          d = Buffer.from(valid.subarray(0, Math.floor(Math.random() * 12)));
          break;
        case 2:
          d = Buffer.from(valid);
          d[Math.floor(Math.random() * 12)] = Math.floor(Math.random() * 256);
          d[0] = 0x80 | (Math.random() < 0.5 ? 0x30 : 0x0f);
          break;
        case 3:
          // RTCP-looking, CSRC counts and extension lengths past the end.
          d = Buffer.from([0x8f, 200 + (i % 24), 0xff, 0xff, ...randomBytes(8)]);
          break;
        default:
          d = Buffer.from(valid);
          d[0] = 0xa0;
          d[d.length - 1] = 0xff;
      }
      // Spoofing the phone's own address is out of reach here: another socket sends.
      fuzzer.send(d, port, '127.0.0.1');
      if (i % 200 === 0) await sleep(1);
    }
    await talking;
    await sleep(300);
    assert.ok(echoed.length >= 100, `the phone heard its echo throughout (${echoed.length} packets)`);
    const health = await client.check();
    assert.equal(health.response?.status, 'SERVING');
    fuzzer.close();
    phone.socket.close();
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('a fork opened again after its listener left starts at live audio, not a burst of catch-up frames', async () => {
    const port = await allocate();
    const phone = new Phone(await udpSocket());
    const talking = phone.talk(port, 250);
    const first = (client.media as unknown as Record<string, (r: unknown) => Stream>).RecordAudio!({ server_rtp_port: port, target_sample_rate: 16000 });
    first.on('error', () => {});
    await new Promise((r) => first.once('data', r));
    first.cancel();
    await sleep(2500);
    const again = (client.media as unknown as Record<string, (r: unknown) => Stream>).RecordAudio!({ server_rtp_port: port, target_sample_rate: 16000 });
    again.on('error', () => {});
    const at: number[] = [];
    again.on('data', () => at.push(performance.now()));
    await eventually(() => at.length >= 1, 3000);
    await sleep(400);
    const inFirst100 = at.filter((t) => t - at[0]! < 100).length;
    assert.ok(inFirst100 <= 7, `${inFirst100} frames in the first 100 ms (real time is 5)`);
    assert.ok(at.length >= 18 && at.length <= 26, `${at.length} frames in ~400 ms`);
    again.cancel();
    await talking;
    phone.socket.close();
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('InjectAudio: a chunk three times the buffer is played whole, not cut to the room left', async () => {
    const port = await allocate();
    const phone = tracked(await RtpPeer.open());
    await play(port, 'control://set_target', phone.address);
    const s = (client.media as unknown as Record<string, () => Duplex>).InjectAudio!();
    const msgs: Record<string, unknown>[] = [];
    s.on('data', (m: Record<string, unknown>) => msgs.push(m));
    s.write({ start: { server_rtp_port: port, sample_rate: 8000, encoding: 'AUDIO_ENCODING_PCM_S16LE', max_buffer_ms: 500 } });
    await eventually(() => msgs.some((m) => m.ready), 3000);
    const pcm = tone(500, 1500, 8000);
    s.write({ audio: Buffer.from(pcm.buffer) });
    s.write({ mark: { name: 'end' } });
    await eventually(() => msgs.some((m) => (m.mark as { name?: string } | undefined)?.name === 'end'), 5000);
    s.end();
    const audio = phone.received.filter((p) => p.payloadType === 0 && p.payload.some((b) => b !== 0xff && b !== 0x7f));
    assert.ok(audio.length >= 74 && audio.length <= 77, `${audio.length} packets of tone heard for 1.5 s sent (75)`);
    phone.close();
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('call ids: invalid UTF-8 is refused (two malformed ids never share a session), spaces and control characters too', async () => {
    // call_id (field 1, string) written as raw bytes: what a broken client can put on the wire.
    const raw = (bytes: number[]): Promise<{ code: number; details: string } | { port: number }> =>
      new Promise((resolve) => {
        const frame = Buffer.from([0x0a, bytes.length, ...bytes]);
        client.media.makeUnaryRequest(
          '/sentiric.media.v1.MediaService/AllocatePort',
          (b: Buffer) => b,
          (b: Buffer) => b,
          frame,
          (err, res) => resolve(err ? { code: err.code, details: err.details } : { port: res![1]! | ((res![2]! & 0x7f) << 7) }),
        );
      });
    const a = await raw([0x61, 0xff, 0x62]);
    const b = await raw([0x61, 0xfe, 0x62]);
    for (const r of [a, b]) {
      assert.ok('code' in r, JSON.stringify(r));
      assert.equal(r.code, grpc.status.INVALID_ARGUMENT);
      assert.match(r.details, /call_id is not valid UTF-8/);
    }
    for (const [id, why] of [['a b@host', /printable ASCII/], ['a\tb', /printable ASCII/], ['x'.repeat(257), /longer than 256/], ['é@host', /printable ASCII/]] as const) {
      const r = await client.media_('AllocatePort', { call_id: id });
      assert.equal(r.error?.code, grpc.status.INVALID_ARGUMENT, id);
      assert.match(r.error!.details, why);
    }
    // A padded id is its own id, never trimmed into another call's.
    const port = await allocate('plain-id@host');
    const padded = await client.media_('AllocatePort', { call_id: ' plain-id@host' });
    assert.equal(padded.error?.code, grpc.status.INVALID_ARGUMENT);
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test("every event of a call carries the call's tenant, whichever RPC caused it", async () => {
    const id = newCallId();
    const port = await allocate(id, { 'x-tenant-id': 'tenant-42' });
    const peer = tracked(await RtpPeer.open());
    await play(port, 'control://set_target', peer.address);
    await play(port, silenceUri(100));
    await peer.sendDtmf('5', port);
    await client.media_('ReleasePort', { rtp_port: port });
    const evs = await eventually(() => {
      const e = amqp.events.filter((x) => x.body.trace_id === id || JSON.stringify(x.body).includes(id));
      const kinds = new Set(e.map((x) => x.routingKey));
      return ['call.media.playback.finished', 'call.media.dtmf.received', 'call.media.session.closed'].every((k) => kinds.has(k)) ? e : undefined;
    }, 8000);
    for (const e of evs) assert.equal(e.body.tenant_id, 'tenant-42', `${e.routingKey} tenant`);
    const lines = svc.lines.filter((l) => l.call_id === id);
    assert.ok(lines.length > 3);
    for (const l of lines) assert.equal(l.tenant_id, 'tenant-42', `${l.event} log line tenant`);
    peer.close();
  });

  test('duplicate requests at the same moment: one session per call id, releases are idempotent, a bridge forms once', async () => {
    const id = newCallId();
    const ports = await Promise.all(Array.from({ length: 20 }, () => client.media_<{ rtp_port: number }>('AllocatePort', { call_id: id })));
    assert.equal(new Set(ports.map((p) => p.response?.rtp_port)).size, 1, 'every concurrent AllocatePort got the same port');
    const other = await allocate();
    const bridges = await Promise.all(Array.from({ length: 10 }, () => client.media_('BridgeCalls', { server_rtp_port_a: ports[0]!.response!.rtp_port, server_rtp_port_b: other })));
    assert.equal(bridges.filter((b) => !b.error).length, 1, 'exactly one BridgeCalls succeeded');
    for (const b of bridges.filter((x) => x.error)) assert.ok([grpc.status.FAILED_PRECONDITION, grpc.status.ALREADY_EXISTS].includes(b.error!.code), b.error!.details);
    // Twenty prompts at once on one call: each queued or refused with a reason, never lost silently.
    const prompts = await Promise.all(Array.from({ length: 20 }, () => play(ports[0]!.response!.rtp_port, silenceUri(40))));
    for (const p of prompts) assert.ok(p.response?.success === true || p.error?.code === grpc.status.RESOURCE_EXHAUSTED, p.error?.details);
    const sessionsBefore = await metric('sentiric_media_active_sessions');
    const releases = await Promise.all(Array.from({ length: 10 }, () => client.media_<{ success: boolean }>('ReleasePort', { rtp_port: ports[0]!.response!.rtp_port })));
    assert.ok(releases.every((r) => r.response?.success === true));
    assert.equal(await metric('sentiric_media_active_sessions'), sessionsBefore - 1);
    await client.media_('ReleasePort', { rtp_port: other });
  });

  test('garbage, boundary and oversized fields on every RPC get a clear status; the service stays up', async () => {
    const port = await allocate();
    const cases: [string, unknown, grpc.status[]][] = [
      ['AllocatePort', { call_id: '' }, [grpc.status.INVALID_ARGUMENT]],
      ['AllocatePort', { call_id: newCallId(), codec: 'G729' }, [grpc.status.INVALID_ARGUMENT]],
      ['AllocatePort', { call_id: newCallId(), srtp: { crypto_suite: 'AES_CM_128_HMAC_SHA1_80', key_params: 'inline:' + 'A'.repeat(5000) } }, [grpc.status.INVALID_ARGUMENT]],
      ['AllocatePort', { call_id: newCallId(), codec: 'OPUS', opus_payload_type: 127000 }, [grpc.status.INVALID_ARGUMENT]],
      ['ReleasePort', { rtp_port: 0 }, [grpc.status.INVALID_ARGUMENT]],
      ['ReleasePort', { rtp_port: 4294967295 }, [grpc.status.INVALID_ARGUMENT]],
      ['PlayAudio', { audio_uri: '', server_rtp_port: port }, [grpc.status.INVALID_ARGUMENT]],
      ['PlayAudio', { audio_uri: 'file://../../etc/passwd', server_rtp_port: port }, [grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.PERMISSION_DENIED]],
      ['PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: '999.1.1.1:5' }, [grpc.status.INVALID_ARGUMENT]],
      ['PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: '127.0.0.1:0' }, [grpc.status.INVALID_ARGUMENT]],
      ['PlayAudio', { audio_uri: 'data:audio/wav;base64,AAAA', server_rtp_port: port }, [grpc.status.INVALID_ARGUMENT]],
      ['PlayAudio', { audio_uri: `control://${'x'.repeat(10_000)}`, server_rtp_port: port }, [grpc.status.INVALID_ARGUMENT]],
      ['PlayAudio', { audio_uri: 'gopher://x', server_rtp_port: 1 }, [grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND]],
      ['StartRecording', { server_rtp_port: port, output_uri: 's3://A/../x' }, [grpc.status.INVALID_ARGUMENT]],
      ['StartRecording', { server_rtp_port: port, output_uri: 'file://../../../x.wav' }, [grpc.status.INVALID_ARGUMENT]],
      ['StartRecording', { server_rtp_port: port, output_uri: 'file:///r/', sample_rate: 7 }, [grpc.status.INVALID_ARGUMENT]],
      ['StartRecording', { server_rtp_port: port, output_uri: 'file:///r/', call_id: 'bad id' }, [grpc.status.INVALID_ARGUMENT]],
      ['StopRecording', { server_rtp_port: port }, [grpc.status.FAILED_PRECONDITION]],
      ['BridgeCalls', { server_rtp_port_a: port, server_rtp_port_b: port }, [grpc.status.INVALID_ARGUMENT]],
      ['BridgeCalls', { server_rtp_port_a: port, server_rtp_port_b: 9 }, [grpc.status.NOT_FOUND]],
      ['UnbridgeCalls', { server_rtp_port: port }, [grpc.status.FAILED_PRECONDITION]],
      ['CreateRoomToken', { room_id: '../../x' }, [grpc.status.INVALID_ARGUMENT]],
      ['CreateRoomToken', { room_id: 'r', ttl_seconds: 10_000_000 }, [grpc.status.INVALID_ARGUMENT]],
    ];
    for (const [method, req, codes] of cases) {
      const r = await client.media_(method, req);
      assert.ok(r.error, `${method} ${JSON.stringify(req).slice(0, 80)} succeeded`);
      assert.ok(codes.includes(r.error.code), `${method} ${JSON.stringify(req).slice(0, 80)}: ${grpc.status[r.error.code]} ${r.error.details}`);
      assert.ok(r.error.details.length > 5 && r.error.details !== 'internal error', `${method}: a useful message, got ${r.error.details}`);
    }
    // Streams: garbage first messages, a stream for a call that does not exist.
    const duplex = (method: string, first: Record<string, unknown>): Promise<{ code: number; details: string }> =>
      new Promise((resolve) => {
        const s = (client.media as unknown as Record<string, () => Duplex>)[method]!();
        s.on('data', () => {});
        s.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }));
        s.on('end', () => resolve({ code: 0, details: 'ended' }));
        s.write(first);
      });
    for (const [method, first, code] of [
      ['StreamAudioToCall', { call_id: '', audio_chunk: Buffer.alloc(2) }, grpc.status.INVALID_ARGUMENT],
      ['StreamAudioToCall', { call_id: 'nobody@nowhere' }, grpc.status.NOT_FOUND],
      ['StreamAudioToCall', { call_id: 'bad id' }, grpc.status.INVALID_ARGUMENT],
      ['InjectAudio', { audio: Buffer.alloc(4) }, grpc.status.INVALID_ARGUMENT],
      ['InjectAudio', { start: { server_rtp_port: port, sample_rate: 11025 } }, grpc.status.INVALID_ARGUMENT],
      ['InjectAudio', { start: { server_rtp_port: port, max_buffer_ms: 5 } }, grpc.status.INVALID_ARGUMENT],
      ['InjectAudio', { start: { server_rtp_port: 9 } }, grpc.status.NOT_FOUND],
    ] as const) {
      const r = await duplex(method, first as Record<string, unknown>);
      assert.equal(r.code, code, `${method} ${JSON.stringify(first)}: ${r.details}`);
    }
    const health = await client.check();
    assert.equal(health.response?.status, 'SERVING');
    await client.media_('ReleasePort', { rtp_port: port });
  });

  test('clients that vanish mid-stream leave nothing behind: no listeners, no injections, the call plays on', async () => {
    const port = await allocate();
    const phone = new Phone(await udpSocket());
    const talking = phone.talk(port, 100);
    const listenersBefore = await metric('sentiric_media_fork_listeners');
    const resources = async (): Promise<Record<string, number>> => ((await (await fetch(svc.url('/debug/resources'))).json()) as { resources: Record<string, number> }).resources;
    const before = await resources();
    for (let round = 0; round < 10; round++) {
      const rec = (client.media as unknown as Record<string, (r: unknown) => Stream>).RecordAudio!({ server_rtp_port: port, target_sample_rate: 16000 });
      rec.on('error', () => {});
      const st = (client.media as unknown as Record<string, (r: unknown) => Stream>).StreamAudio!({ server_rtp_port: port, source: 'AUDIO_SOURCE_STEREO', encoding: 'AUDIO_ENCODING_OPUS', sample_rate: 48000 });
      st.on('error', () => {});
      const inj = (client.media as unknown as Record<string, () => Duplex>).InjectAudio!();
      inj.on('error', () => {});
      inj.on('data', () => {});
      inj.write({ start: { server_rtp_port: port, sample_rate: 16000 } });
      inj.write({ audio: Buffer.from(tone(300, 200, 16000).buffer) });
      await sleep(60);
      rec.cancel();
      st.cancel();
      inj.cancel();
    }
    await eventually(async () => (await metric('sentiric_media_fork_listeners')) === listenersBefore, 3000);
    // Idle timers of abandoned injections and their sockets are gone too.
    await eventually(async () => {
      const now = await resources();
      return (now['Timeout'] ?? 0) <= (before['Timeout'] ?? 0) + 1 && (now['UDPWRAP'] ?? 0) === (before['UDPWRAP'] ?? 0);
    }, 3000).catch(async (e: unknown) => assert.fail(`handles left: before ${JSON.stringify(before)}, after ${JSON.stringify(await resources())}: ${String(e)}`));
    await talking;
    phone.socket.close();
    await client.media_('ReleasePort', { rtp_port: port });
  });
});

describe('SIGTERM with live calls', () => {
  test('no new calls; live calls and their forks go on until the grace, then end UNAVAILABLE, and the process exits 0', async () => {
    const svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '38000', RTP_SERVICE_PORT_MAX: '38099', LOG_LEVEL: 'info', MEDIA_SERVICE_SHUTDOWN_GRACE_SECONDS: '2' } });
    const client = new TestClient(svc.grpcPort);
    try {
      const port = (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: 'drain-1' })).response!.rtp_port;
      const phone = new Phone(await udpSocket());
      const talking = phone.talk(port, 200);
      const fork = (client.media as unknown as Record<string, (r: unknown) => Stream>).RecordAudio!({ server_rtp_port: port, target_sample_rate: 16000 });
      let frames = 0;
      fork.on('data', () => frames++);
      const ended = new Promise<{ code: number; at: number }>((resolve) => {
        fork.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, at: performance.now() }));
        fork.on('end', () => resolve({ code: grpc.status.OK, at: performance.now() }));
      });
      await eventually(() => frames > 5, 3000);
      const sentAt = performance.now();
      const exit = svc.stop('SIGTERM');
      await svc.waitForLog((l) => l.event === 'SERVICE_STOPPING');
      const refused = await client.media_('AllocatePort', { call_id: 'drain-2' });
      assert.equal(refused.error?.code, grpc.status.UNAVAILABLE, 'a new call goes elsewhere');
      const again = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: 'drain-1' });
      assert.equal(again.response?.rtp_port, port, 'a retried AllocatePort of a live call still answers');
      const framesAtStop = frames;
      await sleep(800);
      assert.ok(frames > framesAtStop + 20, 'the fork keeps delivering during the drain');
      const end = await ended;
      assert.equal(end.code, grpc.status.UNAVAILABLE, `the fork ended ${grpc.status[end.code]}, not CANCELLED`);
      assert.ok(end.at - sentAt >= 1800 && end.at - sentAt < 4000, `ended ${Math.round(end.at - sentAt)} ms after SIGTERM (grace 2 s)`);
      assert.equal(await exit, 0);
      await talking;
      phone.socket.close();
    } finally {
      client.close();
      await svc.stop('SIGKILL');
    }
  });

  test('a drain ends as soon as the last call is released', async () => {
    const svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '38100', RTP_SERVICE_PORT_MAX: '38199', LOG_LEVEL: 'info', MEDIA_SERVICE_SHUTDOWN_GRACE_SECONDS: '30' } });
    const client = new TestClient(svc.grpcPort);
    try {
      const port = (await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: 'drain-3' })).response!.rtp_port;
      const exit = svc.stop('SIGTERM');
      await svc.waitForLog((l) => l.event === 'SERVICE_STOPPING');
      await sleep(300);
      const t0 = performance.now();
      assert.equal((await client.media_<{ success: boolean }>('ReleasePort', { rtp_port: port })).response?.success, true);
      assert.equal(await exit, 0);
      assert.ok(performance.now() - t0 < 5000, 'exit follows the last call');
    } finally {
      client.close();
      await svc.stop('SIGKILL');
    }
  });
});
