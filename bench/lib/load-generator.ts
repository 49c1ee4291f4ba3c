// A separate process that plays N phones: each sends 50 packets/s of PCMU to its call's
// port and measures what comes back (loss, inter-packet interval). Runs until told to stop.
import { performance } from 'node:perf_hooks';
import { RtpPhone, summarize } from './rtp-phone.ts';

const phones: RtpPhone[] = [];
const payload = Buffer.alloc(160, 0xff);

let sending = false;
/** When each tick's packets left (epoch ms): tick k carries RTP timestamp (k + 1) * 160. */
const tickEpochMs: number[] = [];
function startSending(): void {
  sending = true;
  const start = performance.now();
  let k = 0;
  const loop = (): void => {
    if (!sending) return;
    k++;
    tickEpochMs.push(performance.timeOrigin + performance.now());
    for (const p of phones) p.send(0, payload, 160);
    setTimeout(loop, Math.max(0, start + k * 20 - performance.now()));
  };
  loop();
}

process.on('message', (msg: { cmd: string; target?: number; seconds?: number }) => {
  void (async () => {
    switch (msg.cmd) {
      case 'add': {
        const p = await RtpPhone.open(msg.target!, 1 + phones.length);
        phones.push(p);
        process.send!({ port: p.port });
        break;
      }
      case 'send':
        startSending();
        process.send!({ ok: true });
        break;
      case 'measure': {
        for (const p of phones) p.startMeasuring();
        await new Promise((r) => setTimeout(r, msg.seconds! * 1000));
        for (const p of phones) p.measuring = false;
        process.send!(summarize(phones, msg.seconds!));
        break;
      }
      case 'ticks':
        process.send!({ ticks: tickEpochMs });
        break;
      case 'cpu': {
        const u = process.cpuUsage();
        process.send!({ seconds: (u.user + u.system) / 1e6 });
        break;
      }
      case 'stop':
        sending = false;
        for (const p of phones) p.close();
        process.exit(0);
    }
  })();
});
