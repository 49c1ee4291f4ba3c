import { lookup } from 'node:dns';
import { isIP } from 'node:net';

/**
 * A dgram `lookup` that answers an address literal at once. Node's own defers even a
 * literal to a later tick, so a send would reach the kernel only after the caller moved on:
 * a buffer reused for the next datagram, or a socket closed right after its last send,
 * would lose what was sent. Names still go through DNS.
 */
export function literalLookup(address: string, family: unknown, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const f = isIP(address);
  if (f !== 0) {
    cb(null, address, f);
    return;
  }
  lookup(address, family as number, cb);
}
