import { randomBytes } from 'node:crypto';
import { invalidArgument } from '../../errors/media-error.ts';
import { SUITE_PARAMS, type SrtpSuite } from './suites.ts';

/**
 * RFC 4568 key parameters: `inline:<base64 key||salt>[|lifetime][|MKI:length]`, or the bare
 * base64 that ffmpeg's -srtp_out_params takes.
 */
export function parseKeyParams(suite: SrtpSuite, keyParams: string): { masterKey: Buffer; masterSalt: Buffer } {
  const p = SUITE_PARAMS[suite];
  const first = keyParams.trim().split(/\s+/)[0] ?? '';
  const body = first.toLowerCase().startsWith('inline:') ? first.slice(7) : first;
  const [b64, ...rest] = body.split('|');
  if (rest.some((r) => r.includes(':'))) throw invalidArgument('SRTP key parameters with an MKI are not supported');
  if (!b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw invalidArgument('SRTP key parameters are not base64');
  const raw = Buffer.from(b64, 'base64');
  const want = p.keyLength + p.saltLength;
  if (raw.length !== want) throw invalidArgument(`${suite} needs ${want} bytes of key and salt, got ${raw.length}`);
  return { masterKey: raw.subarray(0, p.keyLength), masterSalt: raw.subarray(p.keyLength) };
}

export function formatKeyParams(masterKey: Buffer, masterSalt: Buffer): string {
  return `inline:${Buffer.concat([masterKey, masterSalt]).toString('base64')}`;
}

export function generateKeyParams(suite: SrtpSuite): string {
  const p = SUITE_PARAMS[suite];
  return formatKeyParams(randomBytes(p.keyLength), randomBytes(p.saltLength));
}

/** The value of an SDP `a=crypto:` line: `<tag> <suite> <key-params>`. */
export function parseCryptoAttribute(value: string): { tag: number; suite: string; keyParams: string } {
  const m = /^\s*(\d{1,9})\s+(\S+)\s+(\S+)/.exec(value);
  if (!m) throw invalidArgument(`not an a=crypto value: ${JSON.stringify(value.slice(0, 80))}`);
  return { tag: Number(m[1]), suite: m[2]!, keyParams: m[3]! };
}

export function formatCryptoAttribute(tag: number, suite: SrtpSuite, keyParams: string): string {
  return `${tag} ${suite} ${keyParams}`;
}
