import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import {
  TwilioMediaStreamsPeer,
  type TwilioConnection,
  linearToMuLaw,
  muLawToLinear,
  muLawEncode,
  muLawDecode,
} from '../../helpers/twilio-peer.ts';

// A client playing Twilio, written from the schema on
// https://www.twilio.com/docs/voice/media-streams/websocket-messages.

const STREAM = 'MZ00000000000000000000000000000001';
const ACCOUNT = 'AC00000000000000000000000000000001';
const CALL = 'CA00000000000000000000000000000001';

interface FakeTwilio {
  ws: WebSocket;
  received: Record<string, unknown>[];
  send(obj: unknown): void;
  next(pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

async function connect(peer: TwilioMediaStreamsPeer, path = '/media?x=1'): Promise<FakeTwilio> {
  const ws = new WebSocket(new URL(path, peer.url).toString(), { headers: { 'x-test': 'yes' } });
  const received: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
  ws.on('message', (d) => {
    received.push(JSON.parse(d.toString()) as Record<string, unknown>);
    for (const l of listeners) l();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    received,
    send: (obj) => ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)),
    next: (pred) =>
      new Promise((resolve) => {
        const check = (): void => {
          const m = received.find(pred);
          if (m) {
            listeners.delete(check);
            resolve(m);
          }
        };
        listeners.add(check);
        check();
      }),
  };
}

const connected = { event: 'connected', protocol: 'Call', version: '1.0.0' };
const start = (seq = '1') => ({
  event: 'start',
  sequenceNumber: seq,
  start: {
    accountSid: ACCOUNT,
    streamSid: STREAM,
    callSid: CALL,
    tracks: ['inbound'],
    mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    customParameters: { FirstName: 'Jane', token: 'abc' },
  },
  streamSid: STREAM,
});
const media = (seq: number, chunk: number, bytes: Buffer, extra: Record<string, unknown> = {}) => ({
  event: 'media',
  sequenceNumber: String(seq),
  media: { track: 'inbound', chunk: String(chunk), timestamp: String((chunk - 1) * 20), payload: bytes.toString('base64') },
  streamSid: STREAM,
  ...extra,
});
const stop = (seq: number) => ({ event: 'stop', sequenceNumber: String(seq), stop: { accountSid: ACCOUNT, callSid: CALL }, streamSid: STREAM });

function sine(n: number, hz: number, amp: number): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amp * Math.sin((2 * Math.PI * hz * i) / 8000));
  return out;
}

async function withPeer(fn: (peer: TwilioMediaStreamsPeer) => Promise<void>): Promise<void> {
  const peer = await TwilioMediaStreamsPeer.listen();
  try {
    await fn(peer);
  } finally {
    await peer.close();
  }
}

/** Plays a whole stream; `mutate` may alter message k (0 = connected) before it is sent. */
async function playStream(
  peer: TwilioMediaStreamsPeer,
  mutate: (k: number, m: Record<string, unknown>) => Record<string, unknown> = (_k, m) => m,
): Promise<TwilioConnection> {
  const tw = await connect(peer);
  const conn = await peer.nextConnection();
  const audio = muLawEncode(sine(800, 1000, 8000));
  const msgs: Record<string, unknown>[] = [connected, start()];
  for (let c = 1; c <= 5; c++) msgs.push(media(c + 1, c, audio.subarray((c - 1) * 160, c * 160)));
  msgs.push(stop(7));
  msgs.forEach((m, k) => tw.send(mutate(k, m)));
  await conn.waitFor((m) => m.event === 'stop');
  tw.ws.close();
  await conn.closed;
  return conn;
}

test('a faithful stream gives no problems, and audio, dtmf and marks are collected', async () => {
  await withPeer(async (peer) => {
    const tw = await connect(peer);
    const conn = await peer.nextConnection();
    assert.equal(peer.upgrades.length, 1);
    assert.equal(peer.upgrades[0]!.url, '/media?x=1');
    assert.equal(peer.upgrades[0]!.headers['x-test'], 'yes');
    assert.equal(conn.request.url, '/media?x=1');

    const pcm = sine(800, 1000, 8000);
    const bytes = muLawEncode(pcm);
    tw.send(connected);
    tw.send(start());
    const info = await conn.start();
    assert.deepEqual(info, {
      streamSid: STREAM,
      accountSid: ACCOUNT,
      callSid: CALL,
      tracks: ['inbound'],
      customParameters: { FirstName: 'Jane', token: 'abc' },
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    });
    let seq = 2;
    for (let c = 1; c <= 5; c++) tw.send(media(seq++, c, bytes.subarray((c - 1) * 160, c * 160)));
    tw.send({ event: 'dtmf', streamSid: STREAM, sequenceNumber: String(seq++), dtmf: { track: 'inbound_track', digit: '5' } });

    conn.sendMark('m1');
    const mark = await tw.next((m) => m.event === 'mark');
    assert.deepEqual(mark, { event: 'mark', streamSid: STREAM, mark: { name: 'm1' } });
    tw.send({ event: 'mark', sequenceNumber: String(seq++), streamSid: STREAM, mark: { name: 'm1' } });
    tw.send(stop(seq++));
    await conn.waitFor((m) => m.event === 'stop');

    assert.deepEqual(conn.problems, []);
    assert.deepEqual(conn.dtmf, ['5']);
    assert.deepEqual(conn.marks.map((m) => m.name), ['m1']);
    assert.deepEqual(conn.pendingMarks, []);
    assert.equal(conn.messages.length, 10);
    assert.deepEqual(conn.audio('inbound'), muLawDecode(bytes));
    assert.equal(conn.audio('outbound').length, 0);
    assert.ok(conn.stopMessage);

    tw.ws.close(1000, 'bye');
    assert.deepEqual(await conn.closed, { code: 1000, reason: 'bye' });
  });
});

test('a wrong sequenceNumber gives one problem', async () => {
  await withPeer(async (peer) => {
    const conn = await playStream(peer, (k, m) => (k === 3 ? { ...m, sequenceNumber: '9' } : m));
    assert.equal(conn.problems.length, 1, conn.problems.join('\n'));
    assert.match(conn.problems[0]!, /sequenceNumber "9", expected "3"/);
  });
});

test('a jump in sequenceNumber gives one problem', async () => {
  await withPeer(async (peer) => {
    const conn = await playStream(peer, (k, m) => (k >= 3 ? { ...m, sequenceNumber: String(Number(m.sequenceNumber) + 1) } : m));
    assert.equal(conn.problems.length, 1, conn.problems.join('\n'));
    assert.match(conn.problems[0]!, /#4 media: sequenceNumber "4", expected "3"/);
  });
});

test('a numeric sequenceNumber gives a problem', async () => {
  await withPeer(async (peer) => {
    const conn = await playStream(peer, (k, m) => (k === 2 ? { ...m, sequenceNumber: 2 } : m));
    assert.equal(conn.problems.length, 1, conn.problems.join('\n'));
    assert.match(conn.problems[0]!, /sequenceNumber must be a decimal string/);
  });
});

test('a missing streamSid gives one problem', async () => {
  await withPeer(async (peer) => {
    const conn = await playStream(peer, (k, m) => {
      if (k !== 4) return m;
      const { streamSid: _drop, ...rest } = m;
      return rest;
    });
    assert.equal(conn.problems.length, 1, conn.problems.join('\n'));
    assert.match(conn.problems[0]!, /streamSid must be a string, got missing/);
  });
});

test('a chunk gap gives one problem', async () => {
  await withPeer(async (peer) => {
    // chunks 1,2,4,5,6 instead of 1..5
    const conn = await playStream(peer, (k, m) => {
      if (k < 4 || m.event !== 'media') return m;
      const md = m.media as Record<string, unknown>;
      return { ...m, media: { ...md, chunk: String(Number(md.chunk) + 1) } };
    });
    assert.equal(conn.problems.length, 1, conn.problems.join('\n'));
    assert.match(conn.problems[0]!, /media.chunk "4" on inbound, expected "3"/);
  });
});

test('other deviations are reported', async () => {
  await withPeer(async (peer) => {
    const tw = await connect(peer);
    const conn = await peer.nextConnection();
    tw.send(start());
    tw.send({ ...media(2, 1, Buffer.alloc(160, 0xff)), streamSid: 'MZother' });
    tw.send(media(3, 2, Buffer.alloc(160, 0xff), { media: { track: 'outbound', chunk: '1', timestamp: 20, payload: '***' } }));
    tw.send('{not json');
    tw.ws.send(Buffer.from([1, 2, 3]));
    tw.send({ event: 'mark', sequenceNumber: '4', streamSid: STREAM, mark: { name: 'never-sent' } });
    tw.send(stop(5));
    tw.send({ event: 'dtmf', sequenceNumber: '6', streamSid: STREAM, dtmf: { track: 'inbound', digit: '1' } });
    await conn.waitFor((m) => m.event === 'dtmf');
    const all = conn.problems.join('\n');
    for (const re of [
      /#1 start: first message must be connected/,
      /#2 media: streamSid "MZother" differs/,
      /media.track "outbound" not in start.tracks/,
      /media.timestamp must be a string/,
      /media.payload must be a base64 string/,
      /JSON parse error/,
      /binary frame of 3 bytes/,
      /mark "never-sent" was never sent/,
      /#6 dtmf: message after stop/,
      /dtmf.track must be "inbound_track"/,
    ]) {
      assert.match(all, re);
    }
  });
});

test('µ-law: known code points and a 1 kHz sine round trip within 2% RMS error', () => {
  assert.equal(linearToMuLaw(0), 0xff);
  assert.equal(muLawToLinear(0xff), 0);
  assert.equal(muLawToLinear(0x80), 32124);
  assert.equal(muLawToLinear(0x00), -32124);
  assert.equal(linearToMuLaw(32767), 0x80);
  assert.equal(linearToMuLaw(-32768), 0x00);
  // every code decodes to a value that encodes back to the same code (0x7f is -0, same as 0xff)
  for (let c = 0; c < 256; c++) if (c !== 0x7f) assert.equal(linearToMuLaw(muLawToLinear(c)), c);

  const pcm = sine(8000, 1000, 10_000);
  const back = muLawDecode(muLawEncode(pcm));
  let sig = 0;
  let err = 0;
  for (let i = 0; i < pcm.length; i++) {
    sig += pcm[i]! ** 2;
    err += (pcm[i]! - back[i]!) ** 2;
  }
  const ratio = Math.sqrt(err / sig);
  assert.ok(ratio < 0.02, `RMS error ratio ${ratio}`);
});

test('sendAudio of 100 ms makes 5 media messages of 160 bytes; mark and clear follow the schema', async () => {
  await withPeer(async (peer) => {
    const tw = await connect(peer);
    const conn = await peer.nextConnection();
    assert.throws(() => conn.sendAudio(new Int16Array(160)), /no start/);
    tw.send(connected);
    tw.send(start());
    await conn.start();

    const pcm = sine(800, 1000, 8000);
    assert.equal(conn.sendAudio(pcm), 5);
    conn.sendMark('after-audio');
    conn.sendClear();
    await tw.next((m) => m.event === 'clear');

    const sent = tw.received;
    assert.equal(sent.length, 7);
    const medias = sent.slice(0, 5);
    const decoded: Int16Array[] = [];
    for (const m of medias) {
      assert.deepEqual(Object.keys(m).sort(), ['event', 'media', 'streamSid']);
      assert.equal(m.event, 'media');
      assert.equal(m.streamSid, STREAM);
      const md = m.media as Record<string, unknown>;
      assert.deepEqual(Object.keys(md), ['payload']);
      const bytes = Buffer.from(md.payload as string, 'base64');
      assert.equal(bytes.length, 160);
      decoded.push(muLawDecode(bytes));
    }
    assert.deepEqual(Buffer.concat(decoded.map((d) => Buffer.from(d.buffer))), Buffer.from(muLawDecode(muLawEncode(pcm)).buffer));
    assert.deepEqual(sent[5], { event: 'mark', streamSid: STREAM, mark: { name: 'after-audio' } });
    assert.deepEqual(sent[6], { event: 'clear', streamSid: STREAM });
    assert.deepEqual(conn.pendingMarks, ['after-audio']);

    // 50 ms in 20 ms chunks: 160, 160, 80 bytes ("The audio can be of any size")
    tw.received.length = 0;
    assert.equal(conn.sendAudio(new Int16Array(400)), 3);
    await tw.next(() => tw.received.length === 3);
    assert.deepEqual(
      tw.received.map((m) => Buffer.from((m.media as { payload: string }).payload, 'base64').length),
      [160, 160, 80],
    );
  });
});

test('rejectStatus and path answer the upgrade with an HTTP status', async () => {
  const peer = await TwilioMediaStreamsPeer.listen({ path: '/twilio', rejectStatus: 403 });
  try {
    assert.match(peer.url, /^ws:\/\/127\.0\.0\.1:\d+\/twilio$/);
    const statusOf = (url: string) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(url);
        ws.on('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.on('error', () => {});
        ws.on('open', () => reject(new Error('accepted')));
      });
    assert.equal(await statusOf(peer.url), 403);
    peer.rejectStatus = undefined;
    assert.equal(await statusOf(peer.url.replace('/twilio', '/other')), 404);
    assert.equal(peer.upgrades.length, 2);
    assert.equal(peer.connections.length, 0);

    const a = new WebSocket(peer.url);
    const b = new WebSocket(peer.url + '?n=2');
    const c1 = await peer.nextConnection();
    const c2 = await peer.nextConnection();
    assert.notEqual(c1, c2);
    assert.deepEqual(peer.connections, [c1, c2]);
    await assert.rejects(peer.nextConnection(100), /no connection within 100 ms/);
    a.close();
    b.close();
  } finally {
    await peer.close();
  }
});
