import { BlockList, isIP } from 'node:net';

/** Where the service may dial a media stream: by host name, and by address. */
export interface DestinationPolicy {
  /** Host names (`api.example.com`), suffixes (`*.example.com`), or `*` for any public host. */
  hosts: readonly string[];
  /** Address ranges (`10.1.2.0/24`, `127.0.0.1/32`, `fd00::/8`): also how a private address is allowed. */
  cidrs: readonly string[];
}

export type DestinationCheck = { ok: true } | { ok: false; why: string };

/**
 * Addresses that reach into the service's own network: loopback, private, link-local (cloud
 * metadata lives there), carrier-grade NAT, unspecified, multicast, and IPv6's equivalents.
 */
const INTERNAL = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) INTERNAL.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const) INTERNAL.addSubnet(net, bits, 'ipv6');

/** An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is checked as the IPv4 address it is. */
function plain(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m) return { address: m[1]!, family: 'ipv4' };
  return { address, family: isIP(address) === 6 ? 'ipv6' : 'ipv4' };
}

export function isInternal(address: string): boolean {
  const a = plain(address);
  return INTERNAL.check(a.address, a.family);
}

/** Parses the configured ranges once; a bad entry is a configuration error. */
export function compileCidrs(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [net = '', bitsText] = c.trim().split('/');
    const family = isIP(net);
    if (family === 0) throw new Error(`not an address range: ${JSON.stringify(c)}`);
    const max = family === 4 ? 32 : 128;
    const bits = bitsText === undefined ? max : Number(bitsText);
    if (!Number.isInteger(bits) || bits < 0 || bits > max) throw new Error(`not an address range: ${JSON.stringify(c)}`);
    list.addSubnet(net, bits, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

function hostAllowed(host: string, hosts: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return hosts.some((p) => {
    const pat = p.trim().toLowerCase();
    if (pat === '*') return true;
    if (pat.startsWith('*.')) return h.endsWith(pat.slice(1)) && h.length > pat.length - 1;
    return h === pat;
  });
}

/**
 * Whether a stream may be dialled to `url`, whose host resolved to `addresses` (the ones that
 * will be dialled: checking them, not the name, is what stops DNS rebinding). The host must be
 * allowed by name or every address by range; an internal address needs a range that names it.
 */
export function checkDestination(url: URL, addresses: readonly string[], policy: DestinationPolicy, cidrs: BlockList): DestinationCheck {
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') return { ok: false, why: `the URL must be ws:// or wss://, got ${url.protocol}` };
  if (url.username || url.password) return { ok: false, why: 'the URL must not carry credentials; send them as headers' };
  if (addresses.length === 0) return { ok: false, why: `${url.hostname} did not resolve` };
  const inRange = (a: string): boolean => {
    const p = plain(a);
    return cidrs.check(p.address, p.family);
  };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const byName = isIP(host) === 0 && hostAllowed(host, policy.hosts);
  const byAddress = addresses.every(inRange) || (isIP(host) !== 0 && hostAllowed(host, policy.hosts));
  if (!byName && !byAddress) return { ok: false, why: `${host} is not in the media stream allowlist (MEDIA_STREAM_ALLOWED_HOSTS / MEDIA_STREAM_ALLOWED_CIDRS)` };
  const internal = addresses.find((a) => isInternal(a) && !inRange(a));
  if (internal) return { ok: false, why: `${host} resolves to ${internal}, a private, loopback or link-local address; allow its range in MEDIA_STREAM_ALLOWED_CIDRS to dial it` };
  return { ok: true };
}
