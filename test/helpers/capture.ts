import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CapturedDatagram {
  /** Kernel capture time, milliseconds since the epoch. */
  atMs: number;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

/** tshark on the loopback interface with a capture filter for one UDP port. */
export async function captureUdp(port: number | readonly number[]): Promise<{ stop(): Promise<CapturedDatagram[]> }> {
  const filter = (typeof port === 'number' ? [port] : port).map((p) => `udp port ${p}`).join(' or ');
  const file = join(mkdtempSync(join(tmpdir(), 'pcap-')), 'cap.pcapng');
  const p = spawn('tshark', ['-i', 'lo', '-f', filter, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tshark did not start: ${err}`)), 15_000);
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('Capturing on')) {
        clearTimeout(t);
        resolve();
      }
    });
    p.once('exit', () => reject(new Error(`tshark exited: ${err}`)));
  });
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 300));
      p.kill('SIGINT');
      await once(p, 'exit');
      const out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'udp.srcport', '-e', 'udp.dstport', '-e', 'udp.payload'], { maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      return out
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => {
          const [t, s, d, hex] = l.split('\t');
          return { atMs: Number(t) * 1000, srcPort: Number(s), dstPort: Number(d), payload: Buffer.from((hex ?? '').replace(/:/g, ''), 'hex') };
        });
    },
  };
}
