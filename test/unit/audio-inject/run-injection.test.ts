import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { runInjection, type InjectionCommand } from '../../../src/audio-inject/run-injection.ts';
import type { SourceHost } from '../../../src/sessions/media-host.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A call that takes sources and never plays them: queued audio stays queued. */
function host(): SourceHost {
  const events = new EventEmitter();
  return Object.assign(events, {
    callId: 'c',
    traceId: 't',
    tenantId: 'x',
    port: 0,
    closed: false,
    closeReason: null,
    addSource: () => {},
    removeSource: () => {},
    audioQueued: () => {},
    addTap: () => {},
    removeTap: () => {},
  }) as unknown as SourceHost;
}

test('messages whose audio is queued are not kept reachable for as long as the stream lasts', async () => {
  const sent: WeakRef<Int16Array>[] = [];
  const MESSAGES = 200;
  let finish!: () => void;
  const input = {
    async next(): Promise<InjectionCommand | null> {
      if (sent.length === MESSAGES) {
        await new Promise<void>((r) => (finish = r));
        return null;
      }
      // 20 ms at 16 kHz, as a text-to-speech client sends it.
      const pcm = new Int16Array(320).fill(1000);
      sent.push(new WeakRef(pcm));
      return { kind: 'audio', pcm };
    },
  };
  const cancel = new AbortController();
  const run = runInjection({ session: host(), inputRate: 16000, maxBufferMs: 30_000, idleMs: 60_000, input, output: { mark: () => {}, cleared: () => {}, underrun: () => {} }, signal: cancel.signal });
  let reachable: number;
  try {
    while (sent.length < MESSAGES) await tick();
    await tick();
    gc();
    await tick();
    gc();
    reachable = sent.filter((r) => r.deref() !== undefined).length;
  } finally {
    cancel.abort();
  }
  assert.equal((await run).reason, 'cancelled');
  finish();
  // The stream was still open; what it sent had been copied into the queue and could go.
  assert.ok(reachable <= 2, `${reachable} of ${MESSAGES} messages still reachable while the stream was open`);
});

test('idleness is counted from the last message: a client that keeps sending is never idled, one that stops is', async () => {
  const IDLE_MS = 60;
  let read = 0;
  const input = {
    async next(): Promise<InjectionCommand | null> {
      // Eight messages 25 ms apart: 200 ms in all, more than three idle periods.
      if (read === 8) return new Promise<never>(() => {});
      await new Promise((r) => setTimeout(r, 25));
      read++;
      return { kind: 'keepalive' };
    },
  };
  const t0 = performance.now();
  const result = await runInjection({ session: host(), inputRate: 16000, maxBufferMs: 30_000, idleMs: IDLE_MS, input, output: { mark: () => {}, cleared: () => {}, underrun: () => {} }, signal: new AbortController().signal });
  const elapsed = performance.now() - t0;
  assert.equal(result.reason, 'idle');
  assert.equal(read, 8);
  assert.ok(elapsed >= 8 * 25 + IDLE_MS - 5, `idled after ${elapsed.toFixed(0)} ms`);
});

test('a cancel ends a stream waiting for its next message, and one waiting for room in the queue', async () => {
  for (const waitFor of ['message', 'room'] as const) {
    const cancel = new AbortController();
    let read = 0;
    const input = {
      next(): Promise<InjectionCommand | null> {
        read++;
        // 'room': one message larger than the queue's high water; the stream then waits for it to drain.
        if (waitFor === 'room' && read === 1) return Promise.resolve({ kind: 'audio', pcm: new Int16Array(16000) });
        return new Promise<never>(() => {});
      },
    };
    const run = runInjection({ session: host(), inputRate: 16000, maxBufferMs: 500, idleMs: 60_000, input, output: { mark: () => {}, cleared: () => {}, underrun: () => {} }, signal: cancel.signal });
    await tick();
    await tick();
    assert.equal(read, 1, waitFor);
    cancel.abort();
    assert.equal((await run).reason, 'cancelled', waitFor);
  }
});
