// A separate process that plays conference phones: talkers send a tone, the others send
// silence, all at 50 packets/s; every phone measures what comes back. Probe pairs measure the
// mix path's added latency: each probe talker sends on its own phase of the 20 ms period (so
// the probes sample the phases a phone can have against the service's clock), is silent, then
// speaks until its listener's first packet arrives.
import { performance } from 'node:perf_hooks';
import { encodeG711 } from '../../src/codecs/g711.ts';
import { RtpPhone, summarize } from './rtp-phone.ts';

const FRAMES = 50;
const toneFrames = Array.from({ length: FRAMES }, (_, k) =>
  encodeG711('PCMU', Int16Array.from({ length: 160 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 440 * (k * 160 + i)) / 8000)))),
);
const silence = Buffer.alloc(160, 0xff);

interface Probe {
  talker?: RtpPhone;
  listener?: RtpPhone;
  phaseMs: number;
  sentAt: number;
  heardAt: number;
}

const phones: { phone: RtpPhone; talker: boolean }[] = [];
const probes: Probe[] = [];
let probing = false;
let sending = false;

function every20ms(offsetMs: number, fn: (k: number) => void): void {
  const start = performance.now() + offsetMs;
  let k = 0;
  const loop = (): void => {
    if (!sending) return;
    k++;
    fn(k);
    setTimeout(loop, Math.max(0, start + k * 20 - performance.now()));
  };
  setTimeout(loop, offsetMs);
}

function startSending(): void {
  sending = true;
  every20ms(0, (k) => {
    const frame = toneFrames[k % FRAMES]!;
    for (const p of phones) p.phone.send(0, p.talker ? frame : silence, 160);
  });
  for (const probe of probes) {
    every20ms(probe.phaseMs, (k) => {
      probe.talker?.send(0, probing ? toneFrames[k % FRAMES]! : silence, 160);
      if (probing && probe.sentAt === 0) probe.sentAt = performance.now();
    });
  }
}

process.on('message', (msg: { cmd: string; target?: number; talker?: boolean; probe?: { index: number; role: 'talker' | 'listener'; phaseMs: number }; seconds?: number }) => {
  void (async () => {
    switch (msg.cmd) {
      case 'add': {
        const pr = msg.probe;
        if (pr) {
          const probe = (probes[pr.index] ??= { phaseMs: pr.phaseMs, sentAt: 0, heardAt: 0 });
          const p = await RtpPhone.open(msg.target!, 900_000 + pr.index * 2 + (pr.role === 'listener' ? 1 : 0), (_m, at) => {
            if (pr.role === 'listener' && probing && probe.sentAt > 0 && probe.heardAt === 0) probe.heardAt = at;
          });
          probe[pr.role] = p;
          process.send!({ port: p.port });
          break;
        }
        const p = await RtpPhone.open(msg.target!, 1 + phones.length);
        phones.push({ phone: p, talker: msg.talker ?? false });
        process.send!({ port: p.port });
        break;
      }
      case 'send':
        startSending();
        process.send!({ ok: true });
        break;
      case 'probe': {
        // One spurt from silence on every probe: it speaks until its listener hears it (or 1.5 s).
        for (const p of probes) {
          p.sentAt = 0;
          p.heardAt = 0;
        }
        probing = true;
        const t0 = performance.now();
        while (probes.some((p) => p.heardAt === 0) && performance.now() - t0 < 1500) await new Promise((r) => setTimeout(r, 5));
        probing = false;
        process.send!({ ms: probes.map((p) => (p.heardAt > 0 ? p.heardAt - p.sentAt : NaN)) });
        break;
      }
      case 'measure': {
        for (const p of phones) p.phone.startMeasuring();
        await new Promise((r) => setTimeout(r, msg.seconds! * 1000));
        for (const p of phones) p.phone.measuring = false;
        process.send!(summarize(phones.map((p) => p.phone), msg.seconds!));
        break;
      }
      case 'cpu': {
        const u = process.cpuUsage();
        process.send!({ seconds: (u.user + u.system) / 1e6 });
        break;
      }
      case 'stop':
        sending = false;
        for (const p of phones) p.phone.close();
        for (const p of probes) {
          p.talker?.close();
          p.listener?.close();
        }
        process.exit(0);
    }
  })();
});

// The bench that forked this process failed and is gone: nothing reads what it would send.
process.on('disconnect', () => process.exit(0));
