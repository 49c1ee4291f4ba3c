import { lookup } from 'node:dns/promises';
import { isIP, type BlockList, type LookupFunction } from 'node:net';
import { WebSocket } from 'ws';
import { MediaError } from '../errors/media-error.ts';
import { checkDestination, type DestinationPolicy } from './destination.ts';

/** Upgrade headers the service sets itself: a backend's auth travels in any other. */
const RESERVED = new Set(['host', 'connection', 'upgrade', 'content-length', 'transfer-encoding', 'te', 'trailer']);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function checkHeaders(headers: Record<string, string>): void {
  const names = Object.keys(headers);
  if (names.length > 32) throw new MediaError('invalid_argument', 'at most 32 headers may be sent to the backend');
  for (const [name, value] of Object.entries(headers)) {
    const n = name.toLowerCase();
    if (!TOKEN.test(name) || RESERVED.has(n) || n.startsWith('sec-websocket-')) throw new MediaError('invalid_argument', `header ${JSON.stringify(name.slice(0, 64))} cannot be sent to the backend`);
    if (/[\r\n\0]/.test(value) || value.length > 8192) throw new MediaError('invalid_argument', `header ${name} has a value that cannot be sent (control characters, or over 8 kB)`);
  }
}

export interface DialOptions {
  url: URL;
  headers: Record<string, string>;
  policy: DestinationPolicy;
  cidrs: BlockList;
  timeoutMs: number;
  maxPayload: number;
}

/**
 * Dials a backend: the host is resolved once, every address checked against the policy, and
 * the connection made to the checked address (a name that resolves elsewhere a moment later
 * cannot take the stream inside the network). No redirects are followed; wss:// verifies the
 * certificate against the host name.
 */
export async function dialBackend(o: DialOptions): Promise<WebSocket> {
  const host = o.url.hostname.replace(/^\[|\]$/g, '');
  let addresses: { address: string; family: number }[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await withTimeout(lookup(host, { all: true, verbatim: true }), o.timeoutMs, `resolving ${host} took longer than ${o.timeoutMs} ms`);
    } catch (err) {
      if (err instanceof MediaError) throw err;
      throw new MediaError('unavailable', `the media stream host ${host} did not resolve`);
    }
  }
  const check = checkDestination(o.url, addresses.map((a) => a.address), o.policy, o.cidrs);
  if (!check.ok) throw new MediaError('permission_denied', check.why);
  const pinned = addresses[0]!;
  const pin: LookupFunction = (_name, options, cb) => {
    if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [pinned]);
    else cb(null, pinned.address, pinned.family);
  };
  const ws = new WebSocket(o.url, {
    headers: o.headers,
    perMessageDeflate: false,
    followRedirects: false,
    handshakeTimeout: o.timeoutMs,
    maxPayload: o.maxPayload,
    lookup: pin,
  });
  return await new Promise<WebSocket>((resolve, reject) => {
    const fail = (why: string): void => {
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      reject(new MediaError('unavailable', `the media stream backend at ${o.url.host} ${why}`));
    };
    ws.once('open', () => {
      ws.removeAllListeners();
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res) => fail(`refused the WebSocket upgrade with HTTP ${res.statusCode}`));
    ws.once('error', (err: Error) => fail(`could not be reached: ${err.message}`));
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new MediaError('deadline_exceeded', why)), ms)))]).finally(() => clearTimeout(t));
}
