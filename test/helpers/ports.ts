import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export type Proto = 'tcp' | 'udp' | 'both';

/** Whether the protocol(s) can bind this port on loopback now. */
export async function bindable(port: number, proto: Proto = 'both'): Promise<boolean> {
  if (proto !== 'udp') {
    const ok = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (!ok) return false;
  }
  if (proto === 'tcp') return true;
  return new Promise<boolean>((resolve) => {
    const sock = createSocket('udp4');
    sock.once('error', () => (sock.close(), resolve(false)));
    sock.bind(port, '127.0.0.1', () => sock.close(() => resolve(true)));
  });
}

/** The first port the kernel hands out to outgoing connections and unbound sockets. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 1024 ? low : 32768;
  } catch {
    return 32768;
  }
}

/**
 * Listening ports for a service under test: below the kernel's ephemeral range, so no outgoing
 * connection of this or another test (gRPC clients, Redis, browsers) can hold one of them
 * between the check and the service's bind; and below 32000, where the tests' own RTP ranges
 * start (a WebRTC port inside the RTP range is a configuration the service refuses).
 */
export function listenRange(): { lo: number; hi: number } {
  const hi = Math.min(ephemeralLow(), 32000);
  return { lo: hi - 8000, hi };
}

/** The first of `count` consecutive ports in [lo, hi) that are free now, starting at an even port. */
export async function freePortRun(count: number, opts: { lo?: number; hi?: number; proto?: Proto } = {}): Promise<number> {
  const { lo, hi } = { ...listenRange(), ...opts };
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = lo + 2 * Math.floor((Math.random() * (hi - lo - count)) / 2);
    let ok = true;
    for (let k = 0; k < count && ok; k++) ok = await bindable(base + k, opts.proto ?? 'both');
    if (ok) return base;
  }
  throw new Error(`no ${count} free consecutive ports in ${lo}-${hi}`);
}
