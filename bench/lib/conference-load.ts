// A separate process that plays conference phones: talkers send a tone, the others send
// silence, all at 50 packets/s; every phone measures what comes back. A probe pair measures
// the mix path's added latency: the probe talker is silent, then speaks one frame at a time
// known to the process, and the probe listener's first packet after a silence is that frame.
import { performance } from 'node:perf_hooks';
import { encodeG711 } from '../../src/codecs/g711.ts';
import { RtpPhone, summarize } from './rtp-phone.ts';

const FRAMES = 50;
const toneFrames = Array.from({ length: FRAMES }, (_, k) =>
  encodeG711('PCMU', Int16Array.from({ length: 160 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 440 * (k * 160 + i)) / 8000)))),
);
const silence = Buffer.alloc(160, 0xff);

const phones: { phone: RtpPhone; talker: boolean }[] = [];
let probeTalker: RtpPhone | null = null;
let probeListener: RtpPhone | null = null;
/** While a probe runs: when its talker's first loud frame left, and when the listener got audio. */
let probeSentAt = 0;
let probeHeardAt = 0;
let probing = false;
let sending = false;

function startSending(): void {
  sending = true;
  const start = performance.now();
  let k = 0;
  const loop = (): void => {
    if (!sending) return;
    k++;
    const frame = toneFrames[k % FRAMES]!;
    for (const p of phones) p.phone.send(0, p.talker ? frame : silence, 160);
    if (probeTalker) {
      probeTalker.send(0, probing ? frame : silence, 160);
      if (probing && probeSentAt === 0) probeSentAt = performance.now();
    }
    setTimeout(loop, Math.max(0, start + k * 20 - performance.now()));
  };
  loop();
}

process.on('message', (msg: { cmd: string; target?: number; talker?: boolean; probe?: 'talker' | 'listener'; seconds?: number }) => {
  void (async () => {
    switch (msg.cmd) {
      case 'add': {
        if (msg.probe === 'listener') {
          const p = await RtpPhone.open(msg.target!, 900_000, (_m, at) => {
            if (probing && probeSentAt > 0 && probeHeardAt === 0) probeHeardAt = at;
          });
          probeListener = p;
          process.send!({ port: p.port });
          break;
        }
        const p = await RtpPhone.open(msg.target!, 1 + phones.length);
        if (msg.probe === 'talker') probeTalker = p;
        else phones.push({ phone: p, talker: msg.talker ?? false });
        process.send!({ port: p.port });
        break;
      }
      case 'send':
        startSending();
        process.send!({ ok: true });
        break;
      case 'probe': {
        // One spurt from silence: the talker speaks until the listener hears it (or 1.5 s).
        probeSentAt = 0;
        probeHeardAt = 0;
        probing = true;
        const t0 = performance.now();
        while (probeHeardAt === 0 && performance.now() - t0 < 1500) await new Promise((r) => setTimeout(r, 5));
        probing = false;
        const ms = probeHeardAt > 0 ? probeHeardAt - probeSentAt : NaN;
        process.send!({ ms });
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
        probeTalker?.close();
        probeListener?.close();
        process.exit(0);
    }
  })();
});
