import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { FrameLink } from '../../../src/bridge/frame-link.ts';
import type { TimelineFrame } from '../../../src/media-path/inbound-timeline.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Two ends of a network link on this machine, each keeping what it took. */
async function pair(token = randomBytes(16)) {
  const a = await FrameLink.open(token, { kind: 'network', bind: '127.0.0.1', role: 0 });
  const b = await FrameLink.open(token, { kind: 'network', bind: '127.0.0.1', role: 1 });
  const atA: TimelineFrame[] = [];
  const atB: TimelineFrame[] = [];
  a.connect({ address: '127.0.0.1', port: b.udpPort }, (f) => atA.push(f));
  b.connect({ address: '127.0.0.1', port: a.udpPort }, (f) => atB.push(f));
  return { a, b, atA, atB, token };
}

const frame = (v: number): Int16Array => new Int16Array(160).fill(v);

test('a network link carries frames both ways, samples, timestamp and concealment intact, and nothing in the clear', async () => {
  const { a, b, atA, atB } = await pair();
  const tap = createSocket('udp4');
  tap.bind(0, '127.0.0.1');
  await once(tap, 'listening');
  const wire: Buffer[] = [];
  tap.on('message', (m) => wire.push(m));
  // What a's datagram looks like on the wire: sent to a listener instead of b.
  const spy = await FrameLink.open(randomBytes(16), { kind: 'network', bind: '127.0.0.1', role: 0 });
  spy.connect({ address: '127.0.0.1', port: tap.address().port }, () => {});
  spy.send(frame(0x1234), 99, false);
  a.send(frame(1111), 160, false);
  a.send(frame(1112), 320, true);
  b.send(frame(-2222), 480, false);
  await sleep(50);
  assert.deepEqual(atB.map((f) => [f.samples[0], f.samples[159], f.timestamp, f.concealed]), [[1111, 1111, 160, false], [1112, 1112, 320, true]]);
  assert.deepEqual(atA.map((f) => [f.samples[0], f.timestamp]), [[-2222, 480]]);
  assert.equal(wire.length, 1);
  assert.equal(wire[0]!.indexOf(Buffer.from([0x34, 0x12, 0x34, 0x12])), -1, 'the samples crossed the network in the clear');
  for (const l of [a, b, spy]) l.close();
  tap.close();
});

test('a network link refuses forged, tampered, replayed, reordered, reflected and strangers’ frames, and counts them', async () => {
  const { a, b, atB } = await pair();
  // Catch a's real datagrams on their way to b.
  const mitm = createSocket('udp4');
  mitm.bind(0, '127.0.0.1');
  await once(mitm, 'listening');
  const caught: Buffer[] = [];
  mitm.on('message', (m) => caught.push(m));
  a.connect({ address: '127.0.0.1', port: mitm.address().port }, () => {});
  a.send(frame(1), 160, false);
  a.send(frame(2), 320, false);
  a.send(frame(3), 480, false);
  await sleep(30);
  assert.equal(caught.length, 3);
  // The man in the middle sends as if from a's port: only b's own check of every frame stands in its way.
  b.connect({ address: '127.0.0.1', port: mitm.address().port }, (f) => atB.push(f));
  const send = async (m: Buffer): Promise<void> => {
    mitm.send(m, b.udpPort, '127.0.0.1');
    await sleep(15);
  };
  const tampered = Buffer.from(caught[1]!);
  tampered[20]! ^= 1;
  await send(tampered);
  const retimed = Buffer.from(caught[1]!);
  retimed[8]! ^= 1; // the timestamp is authenticated too
  await send(retimed);
  const reflected = Buffer.from(caught[1]!);
  reflected[0] = 1; // b's own role
  await send(reflected);
  await send(caught[1]!.subarray(0, 100));
  assert.equal(atB.length, 0, 'a tampered, re-timed, reflected or short frame was played');
  await send(caught[1]!);
  await send(caught[1]!); // replayed
  await send(caught[0]!); // older than one taken
  await send(caught[2]!);
  assert.deepEqual(atB.map((f) => f.samples[0]), [2, 3]);
  assert.equal(b.refused, 6);
  const stranger = await FrameLink.open(randomBytes(16), { kind: 'network', bind: '127.0.0.1', role: 0 });
  stranger.connect({ address: '127.0.0.1', port: b.udpPort }, () => {});
  stranger.send(frame(9), 0, false);
  await sleep(30);
  assert.equal(atB.length, 2, 'a frame from another port was played');
  assert.equal(b.refused, 7);
  for (const l of [a, b, stranger]) l.close();
  mitm.close();
});

test('a frame under another key fails even from the right port', async () => {
  const token = randomBytes(16);
  const b = await FrameLink.open(token, { kind: 'network', bind: '127.0.0.1', role: 1 });
  const wrong = await FrameLink.open(randomBytes(16), { kind: 'network', bind: '127.0.0.1', role: 0 });
  const taken: TimelineFrame[] = [];
  b.connect({ address: '127.0.0.1', port: wrong.udpPort }, (f) => taken.push(f));
  wrong.connect({ address: '127.0.0.1', port: b.udpPort }, () => {});
  wrong.send(frame(5), 0, false);
  await sleep(30);
  assert.equal(taken.length, 0);
  assert.equal(b.refused, 1);
  b.close();
  wrong.close();
});
