import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Conference } from '../../../src/conference/conference.ts';
import type { ConferenceMember } from '../../../src/conference/member.ts';
import { createLogging } from '../../../src/logging/logger.ts';
import type { MediaClock } from '../../../src/media-path/clock.ts';
import { decodeG711 } from '../../../src/codecs/g711.ts';

const log = createLogging({
  config: { service: { name: 'media-service', env: 'test', tenant_id: 't' }, log: { level: 'silent', format: 'json' } },
  version: 'test',
  destination: { write: () => {} },
}).process;

/** A member that says a constant level every tick and remembers what it heard. */
class Fake implements ConferenceMember {
  readonly kind = 'phone' as const;
  readonly callId: string;
  says: number;
  heard: { value: number | null; shared: boolean } = { value: null as number | null, shared: false };
  flushed = 0;
  detached = false;
  readonly encodedShared: (c: 'PCMU' | 'PCMA') => Uint8Array;
  constructor(callId: string, says: number, encodedShared: (c: 'PCMU' | 'PCMA') => Uint8Array) {
    this.callId = callId;
    this.says = says;
    this.encodedShared = encodedShared;
  }
  take(): Int16Array | null {
    return this.says ? new Int16Array(160).fill(this.says) : null;
  }
  hear(frame: Int16Array | null, shared: boolean): void {
    this.heard = { value: frame ? frame[0]! : null, shared };
  }
  flush(): void {
    this.flushed++;
  }
  detach(): void {
    this.detached = true;
  }
}

function setup(opts: { gate?: boolean; endWhenEmpty?: boolean } = {}) {
  const clocked = new Set<unknown>();
  const clock = { add: (c: unknown) => clocked.add(c), remove: (c: unknown) => clocked.delete(c) } as unknown as MediaClock;
  const conf = new Conference({
    id: 'c1',
    traceId: 't',
    tenantId: 't',
    maxParticipants: 4,
    gateOnTalking: opts.gate ?? false,
    talk: { thresholdDbfs: -45, holdMs: 100 },
    endWhenEmpty: opts.endWhenEmpty ?? true,
    clock,
    log,
  });
  const members = new Map<string, Fake>();
  const add = (id: string, says: number) => {
    conf.join(id, (enc) => {
      const f = new Fake(id, says, enc);
      members.set(id, f);
      return f;
    });
    return members.get(id)!;
  };
  return { conf, clocked, add };
}

test('talkers hear the others, listeners share one frame, mute and deaf and gain apply', () => {
  const { conf, add } = setup();
  const a = add('a', 1000);
  const b = add('b', 200);
  const c = add('c', 0);
  conf.tick(0);
  assert.deepEqual(a.heard, { value: 200, shared: false });
  assert.deepEqual(b.heard, { value: 1000, shared: false });
  assert.deepEqual(c.heard, { value: 1200, shared: true });
  assert.equal(a.flushed + b.flushed + c.flushed, 3);

  conf.control('a', { muted: true });
  conf.tick(20);
  assert.deepEqual(b.heard, { value: null, shared: false }, 'b alone talks: it hears nothing');
  assert.deepEqual(a.heard, { value: 200, shared: true }, 'muted a is a listener now');

  conf.control('a', { muted: false, gainDb: 20 });
  conf.control('c', { deaf: true });
  conf.tick(40);
  assert.equal((b.heard as { value: number | null }).value, 10000);
  assert.equal((c.heard as { value: number | null }).value, null);
});

test('the shared frame is encoded once per codec per tick, whoever asks', () => {
  const { conf, add } = setup();
  add('a', 1000);
  const l1 = add('l1', 0);
  const l2 = add('l2', 0);
  conf.tick(0);
  const p1 = l1.encodedShared('PCMU');
  const p2 = l2.encodedShared('PCMU');
  assert.equal(p1, p2);
  assert.equal(conf.sharedEncodes, 1);
  const pcm = decodeG711('PCMU', p1);
  assert.ok(Math.abs(pcm[0]! - 1000) < 40, `decoded ${pcm[0]}`);
  l1.encodedShared('PCMA');
  assert.equal(conf.sharedEncodes, 2);
  conf.tick(20);
  l2.encodedShared('PCMU');
  assert.equal(conf.sharedEncodes, 3);
});

test('gated on talking: quiet inputs are not mixed; talking events come with the tick time', () => {
  const { conf, add } = setup({ gate: true });
  const events: [string, boolean][] = [];
  conf.on('talking', (p, talking) => events.push([p.participantId, talking]));
  const a = add('a', 2000);
  const hiss = add('hiss', 3);
  const l = add('l', 0);
  conf.tick(0);
  assert.equal(l.heard.value, 2000, 'the hiss below the threshold is not in the mix');
  assert.deepEqual(events, [['a', true]]);
  a.says = 0;
  for (let t = 1; t <= 5; t++) conf.tick(t * 20);
  assert.deepEqual(events, [['a', true], ['a', false]]);
  assert.equal(hiss.heard.value, null);
});

test('leave detaches once; the last one leaving ends a conference that ends when empty; full is refused', () => {
  const { conf, add, clocked } = setup();
  assert.ok(clocked.has(conf));
  const a = add('a', 1);
  add('b', 1);
  add('c', 1);
  add('d', 1);
  assert.throws(() => add('e', 1), /full/);
  assert.throws(() => add('a', 1), /already/);
  const left: string[] = [];
  conf.on('left', (p, reason) => left.push(`${p.participantId}:${reason}`));
  assert.equal(conf.leave('a', 'kicked'), true);
  assert.equal(conf.leave('a', 'kicked'), false);
  assert.equal(a.detached, true);
  let ended = '';
  conf.on('close', (r) => (ended = r));
  conf.leave('b', 'removed');
  conf.leave('c', 'call_ended');
  conf.leave('d', 'removed');
  assert.equal(ended, 'empty');
  assert.deepEqual(left, ['a:kicked', 'b:removed', 'c:call_ended', 'd:removed']);
  assert.equal(clocked.has(conf), false);
  assert.throws(() => add('z', 1), /ended/);
});
