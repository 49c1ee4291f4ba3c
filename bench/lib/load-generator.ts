// A separate process that plays N phones: each sends 50 packets/s of PCMU to its call's
// port and measures what comes back (loss, inter-packet interval). Runs until told to stop.
// The phase of phone i is i % PHASES (see below).
import { performance } from 'node:perf_hooks';
import { sharedClockMs } from './proc.ts';
import { RtpPhone, summarize } from './rtp-phone.ts';

const phones: RtpPhone[] = [];
const payload = Buffer.alloc(160, 0xff);

/**
 * Phones of real calls send at phases of the 20 ms period as random as the calls' starts: phone
 * i sends in phase i % PHASES, 20 / PHASES ms after the phase before. BENCH_PHONE_PHASES=1
 * sends every phone's packet in one burst (the worst case for queueing in the service).
 */
const PHASES = Math.max(1, Math.min(20, Number(process.env.BENCH_PHONE_PHASES ?? 10)));

let sending = false;
/** When each phase's packets of tick k left (sharedClockMs): tick k carries RTP timestamp (k + 1) * 160. */
const tickMs: number[][] = Array.from({ length: PHASES }, () => []);
function startSending(): void {
  sending = true;
  const start = performance.now();
  let k = 0;
  const step = 20 / PHASES;
  const loop = (): void => {
    if (!sending) return;
    const phase = k % PHASES;
    k++;
    tickMs[phase]!.push(sharedClockMs());
    for (let i = phase; i < phones.length; i += PHASES) phones[i]!.send(0, payload, 160);
    setTimeout(loop, Math.max(0, start + k * step - performance.now()));
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
        process.send!({ ticks: tickMs });
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

// The bench that forked this process failed and is gone: nothing reads what it would send.
process.on('disconnect', () => process.exit(0));
