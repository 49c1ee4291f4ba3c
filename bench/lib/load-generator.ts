// A separate process that plays N phones: each sends 50 packets/s of PCMU to its call's
// port and measures what comes back (loss, inter-packet interval). Runs until told to stop.
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';

interface Phone {
  socket: Socket;
  target: number;
  seq: number;
  ts: number;
  ssrc: number;
  lastAt: number;
  lastSeq: number;
  received: number;
  gaps: number;
}

const phones: Phone[] = [];
const intervals: number[] = [];
let measuring = false;
const payload = Buffer.alloc(160, 0xff);

function packet(p: Phone): Buffer {
  const b = Buffer.allocUnsafe(172);
  b[0] = 0x80;
  b[1] = 0;
  b.writeUInt16BE(p.seq, 2);
  b.writeUInt32BE(p.ts, 4);
  b.writeUInt32BE(p.ssrc, 8);
  payload.copy(b, 12);
  return b;
}

async function addPhone(target: number): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const p: Phone = { socket, target, seq: 0, ts: 0, ssrc: 1 + phones.length, lastAt: 0, lastSeq: -1, received: 0, gaps: 0 };
  socket.on('message', (msg) => {
    const now = performance.now();
    const seq = msg.readUInt16BE(2);
    if (measuring) {
      p.received++;
      if (p.lastAt > 0) intervals.push(now - p.lastAt);
      if (p.lastSeq >= 0 && ((seq - p.lastSeq) & 0xffff) !== 1) p.gaps++;
    }
    p.lastAt = now;
    p.lastSeq = seq;
  });
  phones.push(p);
  return socket.address().port;
}

let sending = false;
function startSending(): void {
  sending = true;
  const start = performance.now();
  let k = 0;
  const loop = (): void => {
    if (!sending) return;
    k++;
    for (const p of phones) {
      p.seq = (p.seq + 1) & 0xffff;
      p.ts = (p.ts + 160) >>> 0;
      p.socket.send(packet(p), p.target, '127.0.0.1');
    }
    setTimeout(loop, Math.max(0, start + k * 20 - performance.now()));
  };
  loop();
}

process.on('message', (msg: { cmd: string; target?: number; seconds?: number }) => {
  void (async () => {
    switch (msg.cmd) {
      case 'add':
        process.send!({ port: await addPhone(msg.target!) });
        break;
      case 'send':
        startSending();
        process.send!({ ok: true });
        break;
      case 'measure': {
        for (const p of phones) (p.received = 0), (p.gaps = 0);
        intervals.length = 0;
        measuring = true;
        await new Promise((r) => setTimeout(r, msg.seconds! * 1000));
        measuring = false;
        const sorted = intervals.sort((a, b) => a - b);
        const pct = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? NaN;
        process.send!({
          received: phones.reduce((n, p) => n + p.received, 0),
          expected: phones.length * msg.seconds! * 50,
          seqGaps: phones.reduce((n, p) => n + p.gaps, 0),
          p50: pct(0.5),
          p01: pct(0.01),
          p99: pct(0.99),
        });
        break;
      }
      case 'stop':
        sending = false;
        for (const p of phones) p.socket.close();
        process.exit(0);
    }
  })();
});
