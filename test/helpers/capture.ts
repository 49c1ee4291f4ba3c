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

/**
 * Each interval between consecutive RTP packets, off by how much from what the stream's
 * own timestamps say it should be (milliseconds). A sender that suppresses silence skips
 * a frame with its timestamp moving on: that is a missing frame, which checks of what is
 * heard count, not late delivery, so it is no deviation here; a packet held back is.
 */
export function rtpCadence(packets: readonly CapturedDatagram[], clockRate: number): { atMs: number; deviationMs: number }[] {
  const out: { atMs: number; deviationMs: number }[] = [];
  for (let k = 1; k < packets.length; k++) {
    const a = packets[k - 1]!;
    const b = packets[k]!;
    const dts = (b.payload.readUInt32BE(4) - a.payload.readUInt32BE(4)) | 0;
    out.push({ atMs: b.atMs, deviationMs: Math.abs(b.atMs - a.atMs - (dts * 1000) / clockRate) });
  }
  return out;
}
