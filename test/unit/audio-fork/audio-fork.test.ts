import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AudioFork } from '../../../src/audio-fork/audio-fork.ts';

const frame = (v: number): Int16Array => new Int16Array(160).fill(v);

test('a listener that stops reading loses its oldest frames, counted as they go; memory stays bounded', () => {
  let dropped = 0;
  const fork = new AudioFork({
    format: { source: 'caller', sampleRate: 8000, frameMs: 20, encoding: 'pcm', channels: 1 },
    maxQueueFrames: 5,
    onReadable: () => {},
    onDropped: () => dropped++,
    onCallClosed: () => {},
  });
  for (let i = 0; i < 20; i++) fork.inbound({ samples: frame(i), timestamp: i * 160, concealed: false });
  assert.equal(fork.queued, 5);
  assert.equal(fork.dropped, 15);
  assert.equal(dropped, 15);
  const kept = [fork.shift()!, fork.shift()!, fork.shift()!, fork.shift()!, fork.shift()!];
  assert.deepEqual(kept.map((f) => f.sequence), [15, 16, 17, 18, 19], 'the newest survive; the sequence shows the gap');
  assert.deepEqual(kept.map((f) => new Int16Array(f.data.buffer, f.data.byteOffset, 1)[0]), [15, 16, 17, 18, 19]);
  assert.deepEqual(kept.map((f) => f.rtpTimestamp), [2400, 2560, 2720, 2880, 3040]);
});

test('16 kHz stereo: caller left, service right, 20 ms frames of 1280 bytes on the service clock', () => {
  const out: Buffer[] = [];
  const fork = new AudioFork({
    format: { source: 'stereo', sampleRate: 16000, frameMs: 20, encoding: 'pcm', channels: 2 },
    maxQueueFrames: 100,
    onReadable: () => {
      for (let f = fork.shift(); f; f = fork.shift()) out.push(f.data);
    },
    onCallClosed: () => {},
  });
  for (let i = 0; i < 20; i++) {
    fork.inbound({ samples: frame(1000), timestamp: i * 160, concealed: false });
    fork.outbound(frame(-2000));
  }
  assert.ok(out.length >= 15, `${out.length} frames after 20 ticks (the pairing holds 4)`);
  for (const b of out) assert.equal(b.length, 1280);
  const last = new Int16Array(out.at(-1)!.buffer.slice(out.at(-1)!.byteOffset, out.at(-1)!.byteOffset + 1280));
  assert.ok(Math.abs(last[100]! - 1000) < 20 && Math.abs(last[101]! + 2000) < 40, `L ${last[100]} R ${last[101]}`);
});

test('frame timestamps stay continuous when frames do not line up with the 20 ms input (resampled, 10 ms)', () => {
  for (const [sampleRate, frameMs, encoding] of [[16000, 20, 'pcm'], [48000, 20, 'pcm'], [8000, 10, 'pcm'], [16000, 60, 'pcm'], [16000, 20, 'opus']] as const) {
    const ts: number[] = [];
    const fork = new AudioFork({
      format: { source: 'caller', sampleRate, frameMs, encoding, channels: 1 },
      maxQueueFrames: 100,
      onReadable: () => {
        for (let f = fork.shift(); f; f = fork.shift()) ts.push(f.rtpTimestamp);
      },
      onCallClosed: () => {},
    });
    for (let i = 0; i < 30; i++) fork.inbound({ samples: frame(100), timestamp: (0xffffff00 + i * 160) >>> 0, concealed: false });
    assert.ok(ts.length >= Math.floor((30 * 20) / frameMs) - 2, `${sampleRate} Hz ${frameMs} ms: ${ts.length} frames`);
    // Resampled audio is the resampler's 18 caller ticks (2.25 ms) late, and labelled so.
    assert.equal(ts[0], sampleRate === 8000 ? 0xffffff00 : 0xffffff00 - 18);
    for (let i = 1; i < ts.length; i++) assert.equal((ts[i]! - ts[i - 1]!) >>> 0, frameMs * 8, `${sampleRate} Hz ${frameMs} ms ${encoding}: step at frame ${i}`);
  }
});

for (const source of ['stereo', 'mixed'] as const) {
  test(`${source}: a caller frame that comes after its tick does not shift the caller for the rest of the stream`, () => {
    const frames: Int16Array[] = [];
    const fork = new AudioFork({
      format: { source, sampleRate: 8000, frameMs: 20, encoding: 'pcm', channels: source === 'stereo' ? 2 : 1 },
      maxQueueFrames: 1000,
      onReadable: () => {
        for (let f = fork.shift(); f; f = fork.shift()) frames.push(new Int16Array(f.data.buffer.slice(f.data.byteOffset, f.data.byteOffset + f.data.byteLength)));
      },
      onCallClosed: () => {},
    });
    // Tick t: the service sent t, the caller said 1000 + 10 t. Now and then (jitter, a GC
    // pause) the caller's frame is placed just after its tick, once three ticks late.
    // Frames come in the caller's order: one that is late holds back those behind it.
    const late = new Map([[5, 1], [30, 1], [60, 3]]);
    const arrival: number[] = [];
    for (let t = 0; t < 100; t++) arrival.push(Math.max(t + (late.get(t) ?? 0), arrival[t - 1] ?? 0));
    let next = 0;
    for (let t = 0; t < 100; t++) {
      for (; next < 100 && arrival[next]! <= t; next++) fork.inbound({ samples: frame(1000 + 10 * next), timestamp: next * 160, concealed: false });
      fork.outbound(frame(t));
    }
    fork.callClosed('released');
    assert.equal(frames.length, 100, 'one frame per tick, the held slots given at the end');
    for (let k = 0; k < frames.length; k++) {
      const f = frames[k]!;
      if (source === 'stereo') assert.deepEqual([f[0], f[1]], [1000 + 10 * k, k], `frame ${k}: the caller sits beside the service of its own tick`);
      else assert.equal(f[0], 1000 + 11 * k, `frame ${k}: the mix holds the caller and the service of one tick`);
    }
  });
}

test('listeners of one format share a fork: the same frames, each its own queue and its own sequence from 0', () => {
  const fork = new AudioFork({ format: { source: 'caller', sampleRate: 16000, frameMs: 20, encoding: 'pcm', channels: 1 }, maxQueueFrames: 0, onReadable: () => {}, onCallClosed: () => {} });
  let droppedB = 0;
  const closed: string[] = [];
  const a = fork.join({ maxQueueFrames: 100, onReadable: () => {}, onCallClosed: (r) => closed.push(`a:${r}`) });
  for (let i = 0; i < 5; i++) fork.inbound({ samples: frame(i * 100), timestamp: i * 160, concealed: false });
  const b = fork.join({ maxQueueFrames: 2, onReadable: () => {}, onDropped: () => droppedB++, onCallClosed: (r) => closed.push(`b:${r}`) });
  for (let i = 5; i < 10; i++) fork.inbound({ samples: frame(i * 100), timestamp: i * 160, concealed: false });
  assert.equal(fork.queued, 0, 'a shared fork keeps no queue of its own');
  const fa: ReturnType<typeof a.shift>[] = [];
  for (let f = a.shift(); f; f = a.shift()) fa.push(f);
  const fb: ReturnType<typeof b.shift>[] = [];
  for (let f = b.shift(); f; f = b.shift()) fb.push(f);
  assert.ok(fa.length >= 8, `${fa.length} frames for the first listener`);
  assert.equal(fb.length, 2, 'the slow second listener kept its newest two');
  assert.equal(b.dropped, droppedB);
  assert.ok(droppedB >= 1);
  assert.deepEqual(fa.map((f) => f!.sequence), fa.map((_, i) => i));
  // The second listener counts from where it joined: its gap is its own drops, not the first one's frames.
  assert.deepEqual(fb.map((f) => f!.sequence), [droppedB, droppedB + 1]);
  const last = fa.at(-1)!;
  assert.equal(fb.at(-1)!.origin, last, 'both listeners hold the same frame');
  assert.equal(fb.at(-1)!.data, last.data);
  assert.equal(fork.leave(a), 1);
  fork.callClosed('released');
  assert.deepEqual(closed, ['b:released'], 'a listener that left hears nothing more');
});
