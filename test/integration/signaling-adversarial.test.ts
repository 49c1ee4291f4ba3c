/**
 * Browsers that vanish at every step of signaling, and clients that send whatever they
 * like. What is checked is what the service itself reports: /debug/rooms (each router's
 * transports, producers and consumers as the worker counts them, each worker's routers and
 * load), /debug/resources, the rooms gauge, and that the process is still serving.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePortRun } from '../helpers/ports.ts';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually } from '../helpers/grpc-client.ts';
import { connectSignaling, request, type SignalingSocket } from '../helpers/signaling-client.ts';
import type { Ack, JoinResponse, ProducerInfo, SignalingErrorCode, TransportOptions } from '../../src/signaling/contract.ts';
import { assertNothingLeft, CLIENT_DTLS, debugRooms, opusParameters, outcome, type RegistryResources } from './signaling-fixtures.ts';

type Raw = { emit(event: unknown, ...args: unknown[]): void };
const raw = (s: SignalingSocket): Raw => s as unknown as Raw;

const CODES: readonly SignalingErrorCode[] = ['invalid_argument', 'unauthenticated', 'permission_denied', 'not_found', 'failed_precondition', 'resource_exhausted', 'unavailable'];

/** A refusal a client can act on: a known code other than internal, and a short message. */
function assertClearError(ack: Ack<unknown>, what: string): void {
  assert.equal(ack.ok, false, `${what}: accepted`);
  if (ack.ok) return;
  assert.ok(CODES.includes(ack.error.code), `${what}: code ${ack.error.code} (${ack.error.message})`);
  assert.equal(typeof ack.error.message, 'string');
  assert.ok(ack.error.message.length > 0 && ack.error.message.length <= 300, `${what}: message of ${ack.error.message.length} characters`);
}

/** What one participant has built so far, filled in as its steps succeed. */
interface Built {
  s: SignalingSocket;
  room: string;
  token: string;
  join?: JoinResponse;
  send?: TransportOptions;
  recv?: TransportOptions;
  producerId?: string;
  consumerId?: string;
  /** Producers of the others (and of its own test leg), as announced. */
  others: string[];
}

interface Step {
  name: string;
  request(b: Built): [string, unknown];
  keep?(b: Built, data: never): void;
}

let ssrc = 1000;
// The whole life of a browser in a room, one request per step.
const STEPS: Step[] = [
  { name: 'join', request: (b) => ['join', { roomId: b.room, token: b.token }], keep: (b, d: JoinResponse) => ((b.join = d), b.others.push(...d.producers.map((p) => p.producerId))) },
  { name: 'createTransport(send)', request: () => ['createTransport', { direction: 'send' }], keep: (b, d: TransportOptions) => void (b.send = d) },
  { name: 'createTransport(recv)', request: () => ['createTransport', { direction: 'recv' }], keep: (b, d: TransportOptions) => void (b.recv = d) },
  { name: 'connectTransport', request: (b) => ['connectTransport', { transportId: b.send!.id, dtlsParameters: CLIENT_DTLS }] },
  { name: 'produce', request: (b) => ['produce', { transportId: b.send!.id, kind: 'audio', rtpParameters: opusParameters(ssrc++) }], keep: (b, d: { producerId: string }) => void (b.producerId = d.producerId) },
  { name: 'startTestLeg', request: () => ['startTestLeg', { loop: true }] },
  { name: 'consume', request: (b) => ['consume', { transportId: b.recv!.id, producerId: b.others[0], rtpCapabilities: b.join!.routerRtpCapabilities }], keep: (b, d: { consumerId: string }) => void (b.consumerId = d.consumerId) },
  { name: 'resumeConsumer', request: (b) => ['resumeConsumer', { consumerId: b.consumerId }] },
  { name: 'pauseProducer', request: (b) => ['pauseProducer', { producerId: b.producerId }] },
  { name: 'resumeProducer', request: (b) => ['resumeProducer', { producerId: b.producerId }] },
  { name: 'pauseConsumer', request: (b) => ['pauseConsumer', { consumerId: b.consumerId }] },
  { name: 'closeProducer', request: (b) => ['closeProducer', { producerId: b.producerId }] },
  { name: 'stopTestLeg', request: () => ['stopTestLeg', {}] },
  { name: 'leave', request: () => ['leave', {}] },
];

const sameCounts = (a: { transports: number; producers: number; consumers: number }, b: { transports: number; producers: number; consumers: number }): boolean =>
  a.transports === b.transports && a.producers === b.producers && a.consumers === b.consumers;

const emitNoWait = (s: SignalingSocket, [event, payload]: [string, unknown]): void => raw(s).emit(event, payload, () => undefined);

describe('signaling against browsers that vanish and clients that send garbage', () => {
  let svc: RunningService;
  let client: TestClient;
  const sockets: SignalingSocket[] = [];
  const counts = { vanishPoints: 0, garbageRequests: 0, rawPackets: 0, bursts: 0 };
  const connect = async (): Promise<SignalingSocket> => {
    const s = await connectSignaling(svc.url(''));
    sockets.push(s);
    return s;
  };
  const token = async (room: string): Promise<string> => {
    const r = await client.media_<{ token: string }>('CreateRoomToken', { room_id: room, participant: 'tester' });
    assert.equal(r.error, undefined, r.error?.details);
    return r.response!.token;
  };
  const participant = async (room: string): Promise<Built> => {
    const b: Built = { s: await connect(), room, token: await token(room), others: [] };
    b.s.on('newProducer', (p: ProducerInfo) => b.others.push(p.producerId));
    return b;
  };
  const run = async (b: Built, step: Step): Promise<void> => {
    const [event, payload] = step.request(b);
    const ack = await request(b.s, event, payload);
    assert.ok(ack.ok, `${step.name}: ${outcome(ack)}`);
    step.keep?.(b, ack.data as never);
  };
  const alive = async (): Promise<void> => {
    assert.equal(svc.proc.exitCode, null, `the service exited: ${svc.stderr.join('\n')}`);
    assert.equal((await fetch(svc.url('/healthz'))).status, 200);
  };
  const roomOf = (d: RegistryResources, id: string) => d.rooms.find((r) => r.id === id);

  /** A participant that stays: it sends, and consumes whatever anyone else produces. */
  const witness = async (room: string): Promise<{ b: Built; consumers: Set<string>; baseline: { transports: number; producers: number; consumers: number } }> => {
    const b = await participant(room);
    for (const step of STEPS.slice(0, 5)) await run(b, step);
    const consumers = new Set<string>();
    // consumerClosed can be handled before the promise of the consume's ack settles.
    const closed = new Set<string>();
    b.s.on('newProducer', (p: ProducerInfo) => {
      void request<{ consumerId: string }>(b.s, 'consume', { transportId: b.recv!.id, producerId: p.producerId, rtpCapabilities: b.join!.routerRtpCapabilities }).then(
        (a) => {
          if (a.ok && !closed.has(a.data.consumerId)) consumers.add(a.data.consumerId);
        },
        // A consume still in flight when the witness itself leaves ends with the disconnect: nothing to count.
        () => {},
      );
    });
    b.s.on('consumerClosed', (c) => {
      closed.add(c.consumerId);
      consumers.delete(c.consumerId);
    });
    return { b, consumers, baseline: { transports: 2, producers: 1, consumers: 0 } };
  };

  before(async () => {
    svc = await startService({
      env: { RTP_SERVICE_PORT_MIN: '37200', RTP_SERVICE_PORT_MAX: '37299', RTP_SESSION_INACTIVITY_TIMEOUT_SECONDS: '0', WEBRTC_PORT: String(await freePortRun(1)) },
    });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    client?.close();
    await svc?.stop('SIGKILL');
  });

  // Every point of a browser's life: before joining, after each step, and with each step's
  // request still in flight (sent, then the connection dropped at once).
  // In flight is three points: socket.io drops a request whose connection closed in the
  // same read, so the drop also comes a turn of the event loop and a millisecond later,
  // when the service is inside the request, waiting on the worker.
  const points: { label: string; done: number; inFlight?: 'same read' | 'next turn' | '1 ms' }[] = [{ label: 'connected, never joined', done: 0 }];
  STEPS.forEach((step, i) => {
    for (const inFlight of ['same read', 'next turn', '1 ms'] as const) points.push({ label: `during ${step.name} (${inFlight})`, done: i, inFlight });
    points.push({ label: `after ${step.name}`, done: i + 1 });
  });
  const pause = (inFlight: 'same read' | 'next turn' | '1 ms'): Promise<unknown> =>
    inFlight === 'same read' ? Promise.resolve() : inFlight === 'next turn' ? new Promise((r) => setImmediate(r)) : new Promise((r) => setTimeout(r, 1));

  for (const company of ['alone', 'with someone who stays'] as const) {
    test(`a browser that vanishes at any step leaves nothing behind (${company})`, async (t) => {
      for (const [n, point] of points.entries()) {
        const room = `vanish-${company === 'alone' ? 'a' : 'b'}-${n}`;
        const w = company === 'alone' ? undefined : await witness(room);
        const b = await participant(room);
        for (const step of STEPS.slice(0, point.done)) await run(b, step);
        if (point.inFlight) {
          emitNoWait(b.s, STEPS[point.done]!.request(b));
          await pause(point.inFlight);
        }
        b.s.disconnect();
        counts.vanishPoints++;
        if (!w) {
          await assertNothingLeft(svc).catch((e: Error) => assert.fail(`${point.label}: ${e.message}`));
          continue;
        }
        let last: unknown;
        await eventually(async () => {
          const r = roomOf(await debugRooms(svc), room);
          last = r;
          const { transports, producers } = w.baseline;
          const counted = { transports, producers, consumers: 0 };
          return r !== undefined && r.browsers === 1 && r.serverLegs === 0 && sameCounts(r, counted) && sameCounts(r.tracked, counted) && w.consumers.size === 0;
        }, 5000).catch(() => assert.fail(`${point.label}: the room kept more than the one who stayed: ${JSON.stringify(last)}; its consumers: ${w.consumers.size}`));
        w.b.s.disconnect();
        await assertNothingLeft(svc).catch((e: Error) => assert.fail(`${point.label}, then the last one left: ${e.message}`));
      }
      t.diagnostic(`${points.length} vanishing points`);
    });
  }

  test('a browser in a phone call that vanishes at any step leaves nothing behind, and the call goes on', async (t) => {
    const callId = `vanish-call-${process.pid}`;
    const alloc = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId });
    assert.equal(alloc.error, undefined, alloc.error?.details);
    // Each call room has one phone leg, with its Opus encoder: every one opened is closed again.
    const legs = (): { opened: number; closed: number } => ({
      opened: svc.lines.filter((l) => l.event === 'ROOM_OPENED' && l.attributes?.['room.call'] === true).length,
      closed: svc.lines.filter((l) => l.event === 'CALL_LEG_CLOSED').length,
    });
    const start = legs();
    for (const point of points) {
      const b = await participant(callId);
      for (const step of STEPS.slice(0, point.done)) await run(b, step);
      if (point.inFlight) {
        emitNoWait(b.s, STEPS[point.done]!.request(b));
        await pause(point.inFlight);
      }
      b.s.disconnect();
      counts.vanishPoints++;
      await assertNothingLeft(svc).catch((e: Error) => assert.fail(`${point.label}: ${e.message}`));
      await eventually(() => {
        const now = legs();
        return now.opened - start.opened === now.closed - start.closed;
      }, 5000).catch(() => assert.fail(`${point.label}: a phone leg is still open: ${JSON.stringify({ start, now: legs() })}`));
    }
    const resources = (await (await fetch(svc.url('/debug/resources'))).json()) as { sessions: number };
    assert.equal(resources.sessions, 1, 'the call itself is still up');
    t.diagnostic(`${points.length} vanishing points; ${legs().opened - start.opened} call rooms opened and closed`);
    await client.media_('ReleasePort', { rtp_port: alloc.response!.rtp_port });
  });

  test('two joins in flight on one connection make one participant, and it leaves', async () => {
    const b = await participant('double-join');
    const [a1, a2] = await Promise.all([request(b.s, 'join', { roomId: b.room, token: b.token }), request(b.s, 'join', { roomId: b.room, token: b.token })]);
    assert.deepEqual([a1.ok, a2.ok].sort(), [false, true], `${outcome(a1)} / ${outcome(a2)}`);
    assertClearError(a1.ok ? a2 : a1, 'the second join');
    assert.equal(roomOf(await debugRooms(svc), b.room)?.browsers, 1);
    b.s.disconnect();
    await assertNothingLeft(svc);
  });

  test('bursts of requests in flight cannot pass the per-participant limits', async () => {
    const b = await participant('bursts');
    await run(b, STEPS[0]!);
    const burst = async (n: number, make: () => [string, unknown]): Promise<number> => {
      counts.bursts += n;
      const acks = await Promise.all(Array.from({ length: n }, () => request(b.s, ...make())));
      for (const a of acks) if (!a.ok) assertClearError(a, make()[0]);
      return acks.filter((a) => a.ok).length;
    };
    assert.equal(await burst(12, () => ['createTransport', { direction: 'send' }]), 4, 'transports');
    assert.equal(roomOf(await debugRooms(svc), b.room)?.transports, 4);
    b.s.disconnect();
    await assertNothingLeft(svc);

    const c = await participant('bursts-2');
    await run(c, STEPS[0]!);
    await run(c, STEPS[1]!);
    await run(c, STEPS[2]!);
    counts.bursts += 12;
    const produced = await Promise.all(Array.from({ length: 12 }, () => request(c.s, 'produce', { transportId: c.send!.id, kind: 'audio', rtpParameters: opusParameters(ssrc++) })));
    assert.equal(produced.filter((a) => a.ok).length, 4, 'producers');
    const legs = await Promise.all(Array.from({ length: 5 }, () => request(c.s, 'startTestLeg', { loop: true })));
    counts.bursts += 5;
    assert.equal(legs.filter((a) => a.ok).length, 1, 'test legs');
    await eventually(() => c.others.length > 0, 5000);
    counts.bursts += 6;
    const consumed = await Promise.all(Array.from({ length: 6 }, () => request(c.s, 'consume', { transportId: c.recv!.id, producerId: c.others[0], rtpCapabilities: c.join!.routerRtpCapabilities })));
    assert.equal(consumed.filter((a) => a.ok).length, 1, 'consumers of one producer');
    for (const a of [...produced, ...legs, ...consumed]) if (!a.ok) assertClearError(a, 'a refused request of a burst');
    const r = roomOf(await debugRooms(svc), c.room)!;
    assert.deepEqual({ transports: r.transports, producers: r.producers, consumers: r.consumers, serverLegs: r.serverLegs }, { transports: 3, producers: 5, consumers: 1, serverLegs: 1 });
    assert.deepEqual(r.tracked, { transports: 3, producers: 5, consumers: 1 }, 'the maps hold what the worker holds');
    c.s.disconnect();
    await assertNothingLeft(svc);
  });

  test("garbage for every request gets a clear error and changes nothing in the room", async (t) => {
    const room = 'garbage';
    const w = await witness(room);
    const b = await participant(room);
    for (const step of STEPS.slice(0, 8)) await run(b, step);
    await eventually(async () => w.consumers.size === 2, 5000); // b's producer and test leg
    const snapshot = async (): Promise<unknown> => {
      const r = roomOf(await debugRooms(svc), room);
      return { ...r, witnessConsumers: w.consumers.size };
    };
    const before = await snapshot();

    const big = 'x'.repeat(20_000);
    const deep = JSON.parse(`${'['.repeat(2000)}${']'.repeat(2000)}`) as unknown;
    const protoKey = JSON.parse('{"__proto__":{"roomId":"garbage","token":"x","direction":"send"}}') as unknown;
    // Anything that is not an object of the request's shape.
    const shapeless: unknown[] = [undefined, null, 0, 42, -1, true, false, '', 'x', big, [], [1, 2], deep, protoKey, { a: { b: { c: [] } } }];
    const foreign = { transportId: w.b.send!.id, producerId: w.b.producerId!, consumerId: 'c'.repeat(36) };
    const wrong = <T extends object>(base: T): unknown[] => [
      ...Object.keys(base).map((k) => ({ ...base, [k]: 12345 })),
      ...Object.keys(base).map((k) => ({ ...base, [k]: big })),
      ...Object.keys(base).map((k) => ({ ...base, [k]: [] })),
      ...Object.keys(base).map((k) => ({ ...base, [k]: { nested: deep } })),
      ...Object.keys(base).map((k) => Object.fromEntries(Object.entries(base).filter(([key]) => key !== k))),
    ];
    const badRtp = [{}, { codecs: [] }, { codecs: 'opus' }, { codecs: [{ mimeType: 'audio/opus' }] }, { codecs: [{ mimeType: 'audio/opus', payloadType: 1000, clockRate: -1, channels: 99 }] },
      { codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2 }], encodings: 'x' }, { codecs: Array.from({ length: 500 }, (_, i) => ({ mimeType: 'audio/opus', payloadType: i, clockRate: 48000 })) },
      { ...opusParameters(4242), headerExtensions: [{ id: 3 }] }];
    const badDtls = [{}, { fingerprints: [] }, { fingerprints: 'x' }, { role: 'sideways', fingerprints: [{ algorithm: 'md5', value: 'zz' }] }, { fingerprints: [{ algorithm: 'sha-256' }] }];
    const badCaps = [{ codecs: 'x' }, { codecs: [{}] }, { codecs: [{ kind: 'audio', mimeType: 'audio/opus', clockRate: 'fast' }] }, { headerExtensions: 7 }];

    const cases: [string, unknown][] = [];
    const add = (event: string, payloads: unknown[]): void => void payloads.forEach((p) => cases.push([event, p]));
    add('join', [...shapeless.filter((p) => p !== undefined), ...wrong({ roomId: room, token: b.token }), { roomId: 'a b', token: b.token }, { roomId: room, token: b.token, displayName: 'y'.repeat(65) }, { roomId: room, token: b.token }]);
    add('createTransport', [...shapeless, { direction: 'sideways' }, { direction: 'SEND' }]);
    add('connectTransport', [...shapeless, ...wrong({ transportId: b.recv!.id, dtlsParameters: CLIENT_DTLS }), ...badDtls.map((d) => ({ transportId: b.recv!.id, dtlsParameters: d })), { transportId: foreign.transportId, dtlsParameters: CLIENT_DTLS }]);
    add('produce', [...shapeless, ...wrong({ transportId: b.send!.id, kind: 'audio', rtpParameters: opusParameters(77) }), ...badRtp.map((r) => ({ transportId: b.send!.id, kind: 'audio', rtpParameters: r })), { transportId: b.send!.id, kind: 'data', rtpParameters: opusParameters(78) }, { transportId: foreign.transportId, kind: 'audio', rtpParameters: opusParameters(79) }]);
    for (const name of ['closeProducer', 'pauseProducer', 'resumeProducer']) add(name, [...shapeless, ...wrong({ producerId: b.producerId! }), { producerId: foreign.producerId }, { producerId: 'nope' }]);
    add('consume', [...shapeless, ...wrong({ transportId: b.recv!.id, producerId: foreign.producerId, rtpCapabilities: b.join!.routerRtpCapabilities }), ...badCaps.map((c) => ({ transportId: b.recv!.id, producerId: foreign.producerId, rtpCapabilities: c })), { transportId: b.recv!.id, producerId: b.producerId!, rtpCapabilities: b.join!.routerRtpCapabilities }, { transportId: b.recv!.id, producerId: b.others[0], rtpCapabilities: b.join!.routerRtpCapabilities }, { transportId: foreign.transportId, producerId: foreign.producerId, rtpCapabilities: b.join!.routerRtpCapabilities }]);
    for (const name of ['resumeConsumer', 'pauseConsumer']) add(name, [...shapeless, ...wrong({ consumerId: b.consumerId! }), { consumerId: foreign.consumerId }]);
    // A test leg is playing already: even a well-formed start is refused.
    add('startTestLeg', [...shapeless, { prompt: 5 }, { loop: 'yes' }, { prompt: 'y'.repeat(257) }, { prompt: 'file://../../etc/passwd' }, { prompt: 'file:///etc/passwd' }, { prompt: 'http://127.0.0.1:1/x.wav' }, { prompt: 'data:audio/wav;base64,AAAA' }, { prompt: 'file://demo/nope.wav' }, { prompt: 'nonsense' }, { loop: true }]);
    for (const name of ['stopTestLeg', 'leave']) add(name, [0, 42, true, 'x', big, [], [1, 2], deep]);
    add('selfDestruct', [{}, undefined]);
    add('error', [{}, 'boom']);
    add('__proto__', [{}]);
    add('constructor', [{}]);
    add('hasOwnProperty', [{}]);

    let acks = 0;
    for (const [event, payload] of cases) {
      const ack = await request(b.s, event, payload);
      counts.garbageRequests++;
      acks++;
      assertClearError(ack, `${event} ${JSON.stringify(payload)?.slice(0, 400)}`);
    }
    // A request with more than one payload, and one named by a number: answered, not thrown.
    const extra = await (b.s.timeout(5000) as unknown as { emitWithAck(e: string, a: unknown, b: unknown): Promise<Ack<unknown>> }).emitWithAck('createTransport', { direction: 'send' }, { direction: 'recv' });
    assertClearError(extra, 'createTransport with two payloads');
    const numbered = await (b.s.timeout(5000) as unknown as { emitWithAck(e: unknown, a: unknown): Promise<Ack<unknown>> }).emitWithAck(42, {});
    assertClearError(numbered, 'an event named 42');
    counts.garbageRequests += 2;
    await alive();
    assert.deepEqual(await snapshot(), before, 'the room is as it was');
    assert.ok((await request(b.s, 'pauseConsumer', { consumerId: b.consumerId })).ok, 'and the connection still works');
    t.diagnostic(`${acks + 2} malformed requests over ${new Set(cases.map(([e]) => e)).size} request names`);

    // A frame over the size limit ends the connection; that participant's things go with it.
    emitNoWait(b.s, ['produce', { transportId: b.send!.id, kind: 'audio', rtpParameters: { codecs: 'x'.repeat(100_000) } }]);
    await eventually(() => b.s.disconnected, 5000);
    await eventually(async () => {
      const r = roomOf(await debugRooms(svc), room);
      const counted = { transports: 2, producers: 1, consumers: 0 };
      return r?.browsers === 1 && r.serverLegs === 0 && sameCounts(r, counted) && sameCounts(r.tracked, counted) && w.consumers.size === 0;
    }, 5000);
    await alive();
    w.b.s.disconnect();
    await assertNothingLeft(svc);
  });

  test('protocol garbage below socket.io closes that connection only', async (t) => {
    const keeper = await participant('raw-keeper');
    await run(keeper, STEPS[0]!);
    const url = svc.url('/signaling/?EIO=4&transport=websocket').replace(/^http/, 'ws');
    const packets = [
      '42', '42["join"', '42{"a":1}', '42[]', '42[null]', '42[{}]', '42[42,{}]', '421[42,{}]', '421["error",{}]', '42["disconnect","x"]', '42["connect"]', '42["newListener",{}]',
      '451-["join",{"_placeholder":true,"num":0}]', '451-["join",{"_placeholder":true,"num":7}]', '43[1]', '4399["x"]', '49', '4x', '41', '6', '5', '1', 'garbage', '',
      `42["join",${JSON.stringify({ roomId: 'raw', token: 'x'.repeat(5000) })}]`,
    ];
    for (const packet of packets) {
      const ws = new WebSocket(url);
      const frames: string[] = [];
      ws.addEventListener('message', (e) => frames.push(String(e.data)));
      await new Promise<void>((resolve, reject) => {
        ws.addEventListener('open', () => resolve());
        ws.addEventListener('error', () => reject(new Error('the raw websocket did not open')));
      });
      await eventually(() => frames.some((f) => f.startsWith('0')), 5000);
      ws.send('40');
      await eventually(() => frames.some((f) => f.startsWith('40')), 5000);
      ws.send(packet);
      counts.rawPackets++;
      await new Promise((r) => setTimeout(r, 30));
      ws.close();
      await alive();
    }
    assert.ok((await request(keeper.s, 'createTransport', { direction: 'send' })).ok, 'other connections keep working');
    keeper.s.disconnect();
    await assertNothingLeft(svc);
    t.diagnostic(`${packets.length} raw packets`);
  });

  test('totals', (t) => {
    t.diagnostic(JSON.stringify(counts));
  });
});
