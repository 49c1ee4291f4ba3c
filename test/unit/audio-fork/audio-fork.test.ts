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
  for (let i = 0; i < 10; i++) {
    fork.inbound({ samples: frame(1000), timestamp: i * 160, concealed: false });
    fork.outbound(frame(-2000));
  }
  assert.ok(out.length >= 9);
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
    assert.equal(ts[0], 0xffffff00);
    for (let i = 1; i < ts.length; i++) assert.equal((ts[i]! - ts[i - 1]!) >>> 0, frameMs * 8, `${sampleRate} Hz ${frameMs} ms ${encoding}: step at frame ${i}`);
  }
});
