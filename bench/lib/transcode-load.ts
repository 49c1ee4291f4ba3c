// A separate process that plays both ends of N bridged pairs: phone A sends real-time PCMU
// (speech, looped) to leg A, phone B sends pre-encoded 20 ms Opus (the same speech, encoded
// once at start-up) to leg B. Both measure what comes back: loss, sequence gaps, interval.
// Probe pairs send silence with a 20 ms tone burst every 200 ms into A instead; B's Opus is
// decoded there and the burst's first loud packet timed: packet into A -> Opus packet out of B.
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { encodeG711 } from '../../src/codecs/g711.ts';
import { OpusFrameDecoder, OpusFrameEncoder } from '../../src/codecs/opus.ts';
import { resample } from '../../src/codecs/resampler.ts';
import { readWavPcm } from '../../test/helpers/audio.ts';

interface Leg {
  socket: Socket;
  target: number;
  seq: number;
  ts: number;
  ssrc: number;
  lastAt: number;
  lastSeq: number;
  received: number;
  gaps: number;
  intervals: number[];
}

interface Pair {
  a: Leg;
  b: Leg;
  probe: { decoder: OpusFrameDecoder; loud: boolean; burstAt: number } | null;
}

const PROBE_PERIOD_FRAMES = 10;
const LOUD_MEAN_SQUARE = (32768 * 0.03) ** 2;

const pairs: Pair[] = [];
const latencies: number[] = [];
let measuring = false;
let pcmuFrames: Buffer[] = [];
let opusFrames: Buffer[] = [];
const silence = Buffer.alloc(160, 0xff);
let burst = silence;

function header(l: Leg, pt: number, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(12 + payload.length);
  b[0] = 0x80;
  b[1] = pt;
  b.writeUInt16BE(l.seq, 2);
  b.writeUInt32BE(l.ts, 4);
  b.writeUInt32BE(l.ssrc, 8);
  payload.copy(b, 12);
  return b;
}

async function leg(target: number, ssrc: number, onPacket?: (msg: Buffer, at: number) => void): Promise<Leg> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const l: Leg = { socket, target, seq: 0, ts: 0, ssrc, lastAt: 0, lastSeq: -1, received: 0, gaps: 0, intervals: [] };
  socket.on('message', (msg) => {
    const now = performance.now();
    const seq = msg.readUInt16BE(2);
    if (measuring) {
      l.received++;
      if (l.lastAt > 0) l.intervals.push(now - l.lastAt);
      if (l.lastSeq >= 0 && ((seq - l.lastSeq) & 0xffff) !== 1) l.gaps++;
    }
    l.lastAt = now;
    l.lastSeq = seq;
    onPacket?.(msg, now);
  });
  return l;
}

function prepare(wav8k: string, wav16k: string, opusRate: 8000 | 48000, complexity: number): void {
  const pcm8 = readWavPcm(wav8k);
  pcmuFrames = [];
  for (let off = 0; off + 160 <= pcm8.length; off += 160) pcmuFrames.push(Buffer.from(encodeG711('PCMU', pcm8.subarray(off, off + 160))));
  const src = opusRate === 8000 ? pcm8 : resample(readWavPcm(wav16k), 16000, opusRate);
  const enc = new OpusFrameEncoder({ sampleRate: opusRate, complexity, bitrate: opusRate === 8000 ? 24000 : 32000 });
  opusFrames = [];
  for (let off = 0; off + enc.frameSamples <= src.length; off += enc.frameSamples) opusFrames.push(enc.encode(src.subarray(off, off + enc.frameSamples)));
  burst = Buffer.from(encodeG711('PCMU', Int16Array.from({ length: 160 }, (_, i) => Math.round(12000 * Math.sin((2 * Math.PI * 1000 * i) / 8000)))));
}

async function addPair(portA: number, portB: number, probe: boolean): Promise<void> {
  const p: Pair = { a: undefined as unknown as Leg, b: undefined as unknown as Leg, probe: probe ? { decoder: new OpusFrameDecoder({ sampleRate: 8000 }), loud: false, burstAt: 0 } : null };
  p.a = await leg(portA, 0x1000 + pairs.length);
  p.b = await leg(portB, 0x2000 + pairs.length, (msg, at) => {
    const pr = p.probe;
    if (!pr) return;
    const pcm = pr.decoder.decode(msg.subarray(12));
    let e = 0;
    for (let i = 0; i < pcm.length; i++) e += pcm[i]! * pcm[i]!;
    const loud = e / pcm.length > LOUD_MEAN_SQUARE;
    if (loud && !pr.loud && pr.burstAt > 0) {
      const ms = at - pr.burstAt;
      if (measuring && ms > 0 && ms < 500) latencies.push(ms);
      pr.burstAt = 0;
    }
    pr.loud = loud;
  });
  pairs.push(p);
}

/** Phones are not in step: pair i sends at phase (i % GROUPS) * 20 / GROUPS ms of each 20 ms. */
const GROUPS = 10;

let sending = false;
function startSending(): void {
  sending = true;
  const start = performance.now();
  let step = 0;
  const loop = (): void => {
    if (!sending) return;
    const now = performance.now();
    const group = step % GROUPS;
    const k = Math.floor(step / GROUPS);
    for (let i = group; i < pairs.length; i += GROUPS) {
      const p = pairs[i]!;
      let payload: Buffer;
      if (p.probe) {
        const isBurst = k % PROBE_PERIOD_FRAMES === 0;
        payload = isBurst ? burst : silence;
        if (isBurst) p.probe.burstAt = now;
      } else {
        payload = pcmuFrames[k % pcmuFrames.length]!;
      }
      p.a.seq = (p.a.seq + 1) & 0xffff;
      p.a.ts = (p.a.ts + 160) >>> 0;
      p.a.socket.send(header(p.a, 0, payload), p.a.target, '127.0.0.1');
      p.b.seq = (p.b.seq + 1) & 0xffff;
      p.b.ts = (p.b.ts + 960) >>> 0;
      p.b.socket.send(header(p.b, 111, opusFrames[k % opusFrames.length]!), p.b.target, '127.0.0.1');
    }
    step++;
    setTimeout(loop, Math.max(0, start + (step * 20) / GROUPS - performance.now()));
  };
  loop();
}

function pct(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? NaN;
}

function direction(legs: Leg[], seconds: number): Record<string, number> {
  const iv = legs.flatMap((l) => l.intervals).sort((x, y) => x - y);
  return {
    received: legs.reduce((n, l) => n + l.received, 0),
    expected: legs.length * seconds * 50,
    seqGaps: legs.reduce((n, l) => n + l.gaps, 0),
    p01: pct(iv, 0.01),
    p50: pct(iv, 0.5),
    p99: pct(iv, 0.99),
  };
}

process.on('message', (msg: { cmd: string; a?: number; b?: number; probe?: boolean; seconds?: number; wav8k?: string; wav16k?: string; opusRate?: 8000 | 48000; complexity?: number }) => {
  void (async () => {
    switch (msg.cmd) {
      case 'prepare':
        prepare(msg.wav8k!, msg.wav16k!, msg.opusRate ?? 48000, msg.complexity ?? 5);
        process.send!({ ok: true, opusBytesPerFrame: opusFrames.reduce((n, f) => n + f.length, 0) / opusFrames.length });
        break;
      case 'add':
        await addPair(msg.a!, msg.b!, msg.probe ?? false);
        process.send!({ ok: true });
        break;
      case 'send':
        startSending();
        process.send!({ ok: true });
        break;
      case 'measure': {
        for (const p of pairs) for (const l of [p.a, p.b]) (l.received = 0), (l.gaps = 0), (l.intervals = []);
        latencies.length = 0;
        const cpu0 = process.cpuUsage();
        measuring = true;
        await new Promise((r) => setTimeout(r, msg.seconds! * 1000));
        measuring = false;
        const cpu = process.cpuUsage(cpu0);
        const lat = [...latencies].sort((x, y) => x - y);
        process.send!({
          toA: direction(pairs.map((p) => p.a), msg.seconds!),
          toB: direction(pairs.map((p) => p.b), msg.seconds!),
          latency: { samples: lat.length, min: lat[0] ?? NaN, p50: pct(lat, 0.5), p99: pct(lat, 0.99), max: lat.at(-1) ?? NaN },
          generatorCpu: (cpu.user + cpu.system) / 1e6 / msg.seconds!,
        });
        break;
      }
      case 'stop':
        sending = false;
        for (const p of pairs) for (const l of [p.a, p.b]) l.socket.close();
        process.exit(0);
    }
  })();
});
