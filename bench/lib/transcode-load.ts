// A separate process that plays both ends of N bridged pairs: phone A sends real-time PCMU
// (speech, looped) to leg A, phone B sends pre-encoded 20 ms Opus (the same speech, encoded
// once at start-up) to leg B. Both measure what comes back: loss, sequence gaps, interval.
// Probe pairs send silence with a 20 ms tone burst every 200 ms into A instead; B's Opus is
// decoded there and the burst's first loud packet timed: packet into A -> Opus packet out of B.
import { performance } from 'node:perf_hooks';
import { encodeG711 } from '../../src/codecs/g711.ts';
import { OpusFrameDecoder, OpusFrameEncoder } from '../../src/codecs/opus.ts';
import { resample } from '../../src/codecs/resampler.ts';
import { readWavPcm } from '../../test/helpers/audio.ts';
import { percentile as pct, RtpPhone, summarize } from './rtp-phone.ts';

interface Pair {
  a: RtpPhone;
  b: RtpPhone;
  probe: { decoder: OpusFrameDecoder; loud: boolean; burstAt: number } | null;
}

const PROBE_PERIOD_FRAMES = 10;
const LOUD_MEAN_SQUARE = (32768 * 0.03) ** 2;

const pairs: Pair[] = [];
const latencies: number[] = [];
let pcmuFrames: Buffer[] = [];
let opusFrames: Buffer[] = [];
const silence = Buffer.alloc(160, 0xff);
let burst = silence;

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
  const pr = probe ? { decoder: new OpusFrameDecoder({ sampleRate: 8000 }), loud: false, burstAt: 0 } : null;
  const a = await RtpPhone.open(portA, 0x1000 + pairs.length);
  const b = await RtpPhone.open(portB, 0x2000 + pairs.length, (msg, at) => {
    if (!pr) return;
    const pcm = pr.decoder.decode(msg.subarray(12));
    let e = 0;
    for (let i = 0; i < pcm.length; i++) e += pcm[i]! * pcm[i]!;
    const loud = e / pcm.length > LOUD_MEAN_SQUARE;
    if (loud && !pr.loud && pr.burstAt > 0) {
      const ms = at - pr.burstAt;
      if (b.measuring && ms > 0 && ms < 500) latencies.push(ms);
      pr.burstAt = 0;
    }
    pr.loud = loud;
  });
  pairs.push({ a, b, probe: pr });
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
      p.a.send(0, payload, 160);
      p.b.send(111, opusFrames[k % opusFrames.length]!, 960);
    }
    step++;
    setTimeout(loop, Math.max(0, start + (step * 20) / GROUPS - performance.now()));
  };
  loop();
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
        latencies.length = 0;
        const cpu0 = process.cpuUsage();
        for (const p of pairs) for (const l of [p.a, p.b]) l.startMeasuring();
        await new Promise((r) => setTimeout(r, msg.seconds! * 1000));
        for (const p of pairs) for (const l of [p.a, p.b]) l.measuring = false;
        const cpu = process.cpuUsage(cpu0);
        const lat = [...latencies].sort((x, y) => x - y);
        process.send!({
          toA: summarize(pairs.map((p) => p.a), msg.seconds!),
          toB: summarize(pairs.map((p) => p.b), msg.seconds!),
          latency: { samples: lat.length, min: lat[0] ?? NaN, p50: pct(lat, 0.5), p99: pct(lat, 0.99), max: lat.at(-1) ?? NaN },
          generatorCpu: (cpu.user + cpu.system) / 1e6 / msg.seconds!,
        });
        break;
      }
      case 'stop':
        sending = false;
        for (const p of pairs) for (const l of [p.a, p.b]) l.close();
        process.exit(0);
    }
  })();
});

// The bench that forked this process failed and is gone: nothing reads what it would send.
process.on('disconnect', () => process.exit(0));
