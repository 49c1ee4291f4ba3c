import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { RemoteBridgeEnd } from '../../../src/bridge/remote-bridge-end.ts';
import type { AudioSource } from '../../../src/media-path/mixer.ts';
import type { CallSession, CallTap } from '../../../src/sessions/call-session.ts';

/** What a half uses of its call: taps, sources, a port and a logger. */
function fakeCall(port: number) {
  const taps = new Set<CallTap>();
  const sources = new Set<AudioSource>();
  const session = {
    port,
    closed: false,
    log: pino({ level: 'silent' }),
    addTap: (t: CallTap) => taps.add(t),
    removeTap: (t: CallTap) => taps.delete(t),
    addSource: (s: AudioSource) => sources.add(s),
    removeSource: (s: AudioSource) => sources.delete(s),
  } as unknown as CallSession;
  /** The caller says one frame. */
  const say = (v: number): void => {
    for (const t of taps) t.inbound?.({ samples: new Int16Array(160).fill(v), timestamp: 1234, concealed: false });
  };
  /** What the call hears on its next tick. */
  const hear = (): number | null => {
    const acc = new Int32Array(160);
    let heard = false;
    for (const s of sources) heard = s.mixInto(acc) || heard;
    return heard ? acc[0]! : null;
  };
  return { session, taps, sources, say, hear };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('two halves carry each call’s frames to the other and take nothing before they are connected', async () => {
  const token = randomBytes(16);
  const a = fakeCall(10000);
  const b = fakeCall(20000);
  const ea = await RemoteBridgeEnd.open(a.session, token, 'b');
  const eb = await RemoteBridgeEnd.open(b.session, token, 'a');
  assert.equal(a.taps.size, 0, 'nothing is tapped before connect');
  ea.connect({ address: '127.0.0.1', port: eb.udpPort });
  eb.connect({ address: '127.0.0.1', port: ea.udpPort });
  a.say(1111);
  b.say(2222);
  await sleep(50);
  assert.equal(b.hear(), 1111);
  assert.equal(a.hear(), 2222);
  assert.equal(ea.stats.aToB.frames, 1);
  ea.close('unbridged');
  assert.equal(a.taps.size + a.sources.size, 0, 'a closed half leaves its call as it found it');
  eb.close('unbridged');
});

test('a half refuses datagrams from any other port and any with the wrong token', async () => {
  const token = randomBytes(16);
  const a = fakeCall(10000);
  const end = await RemoteBridgeEnd.open(a.session, token, 'test');
  const peer = createSocket('udp4');
  peer.bind(0, '127.0.0.1');
  await once(peer, 'listening');
  const stranger = createSocket('udp4');
  stranger.bind(0, '127.0.0.1');
  await once(stranger, 'listening');
  end.connect({ address: '127.0.0.1', port: peer.address().port });
  const packet = (t: Buffer, v: number): Buffer => {
    const p = Buffer.alloc(16 + 1 + 4 + 320);
    t.copy(p, 0);
    Buffer.from(new Int16Array(160).fill(v).buffer).copy(p, 21);
    return p;
  };
  stranger.send(packet(token, 5000), end.udpPort, '127.0.0.1');
  peer.send(packet(randomBytes(16), 6000), end.udpPort, '127.0.0.1');
  peer.send(packet(token, 7000).subarray(0, 100), end.udpPort, '127.0.0.1');
  await sleep(50);
  assert.equal(a.hear(), null, 'a stranger, a wrong token or a short datagram was played');
  peer.send(packet(token, 7000), end.udpPort, '127.0.0.1');
  await sleep(50);
  assert.equal(a.hear(), 7000);
  end.close('unbridged');
  peer.close();
  stranger.close();
});
