// Outbound cadence as the wire saw it: a kernel-timestamped capture (dumpcap) of the RTP the
// service sends on loopback. The load generator times packets in its own event loop, so its
// interval p99 carries that loop's delays; the capture's timestamps carry none of them.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile } from './proc.ts';

export interface WireCadence {
  packets: number;
  streams: number;
  /** Intervals between packets of one stream whose sequence numbers follow each other. */
  p50: number;
  p99: number;
  /** Share of those intervals outside 20 +- 5 ms. */
  outOfSpec: number;
}

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_LINUX_SLL = 113;

export class WireCapture {
  readonly #proc: ChildProcess;
  readonly #dir: string;
  readonly #file: string;

  private constructor(proc: ChildProcess, dir: string, file: string) {
    this.#proc = proc;
    this.#dir = dir;
    this.#file = file;
  }

  /** Captures UDP sent from the service's RTP ports (`min`-`max`) on loopback; resolves once capturing. */
  static async start(min: number, max: number): Promise<WireCapture> {
    const dir = mkdtempSync(join(tmpdir(), 'wire-cadence-'));
    const file = join(dir, 'rtp.pcap');
    // -P: classic pcap; -s 64: headers and the RTP sequence number are all that is read.
    const proc = spawn('dumpcap', ['-i', 'lo', '-P', '-s', '64', '-q', '-f', `udp src portrange ${min}-${max}`, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`dumpcap did not start: ${err}`)), 10_000);
      proc.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (/Capturing on/.test(err)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`dumpcap exited (${code}): ${err}`));
      });
    });
    return new WireCapture(proc, dir, file);
  }

  async stop(): Promise<WireCadence> {
    const exited = new Promise<void>((r) => this.#proc.once('exit', () => r()));
    this.#proc.kill('SIGINT');
    await exited;
    try {
      // BENCH_WIRE_PCAP=path keeps the capture for a closer look (one file: the last one taken).
      if (process.env.BENCH_WIRE_PCAP) copyFileSync(this.#file, process.env.BENCH_WIRE_PCAP);
      return cadenceOf(readFileSync(this.#file));
    } finally {
      rmSync(this.#dir, { recursive: true, force: true });
    }
  }
}

/** Reads a classic pcap of IPv4/UDP/RTP packets. */
export function cadenceOf(pcap: Buffer): WireCadence {
  const magic = pcap.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const nanos = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  const u32 = (o: number): number => (le ? pcap.readUInt32LE(o) : pcap.readUInt32BE(o));
  const link = u32(20);
  const l2 = link === LINKTYPE_ETHERNET ? 14 : link === LINKTYPE_LINUX_SLL ? 16 : -1;
  if (l2 < 0) throw new Error(`unexpected pcap link type ${link}`);
  const last = new Map<number, { at: number; seq: number }>();
  const intervals: number[] = [];
  let packets = 0;
  for (let o = 24; o + 16 <= pcap.length; ) {
    const at = u32(o) * 1000 + u32(o + 4) / (nanos ? 1e6 : 1e3);
    const caplen = u32(o + 8);
    const p = o + 16;
    o = p + caplen;
    const ip = p + l2;
    if (caplen < l2 + 20 + 8 + 4 || (pcap[ip]! >> 4) !== 4) continue;
    const udp = ip + (pcap[ip]! & 0x0f) * 4;
    const port = pcap.readUInt16BE(udp);
    const seq = pcap.readUInt16BE(udp + 8 + 2);
    packets++;
    const prev = last.get(port);
    last.set(port, { at, seq });
    if (prev && ((seq - prev.seq) & 0xffff) === 1) intervals.push(at - prev.at);
  }
  intervals.sort((a, b) => a - b);
  const out = intervals.filter((d) => d < 15 || d > 25).length;
  return { packets, streams: last.size, p50: percentile(intervals, 0.5), p99: percentile(intervals, 0.99), outOfSpec: intervals.length ? out / intervals.length : 0 };
}
