import { randomBytes } from 'node:crypto';
import { invalidArgument } from '../../errors/media-error.ts';
import { SUITE_PARAMS, type SrtpSuite } from './suites.ts';

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** RFC 4568 lifetime: a packet count, decimal or as a power of two. */
const LIFETIME = /^(?:2\^\d{1,2}|\d{1,20})$/;
/** RFC 4568 MKI: value ":" length. */
const MKI = /^\d{1,20}:\d{1,3}$/;

/**
 * RFC 4568 key parameters, `inline:<base64 key||salt>[|lifetime][|MKI:length]`, or the bare
 * base64 that ffmpeg's -srtp_out_params takes. The lifetime is accepted and not enforced:
 * rekeying happens with a new offer/answer, never mid-stream, and no call lives 2^31 packets.
 */
export function parseKeyParams(suite: SrtpSuite, keyParams: string): { masterKey: Buffer; masterSalt: Buffer } {
  const p = SUITE_PARAMS[suite];
  const text = keyParams.trim();
  // Several keys in one attribute only make sense with MKIs, which are not supported.
  if (text.includes(';')) throw invalidArgument('SRTP key parameters with more than one key are not supported');
  const body = /^inline:/i.test(text) ? text.slice(7) : text;
  const [b64 = '', ...rest] = body.split('|');
  if (rest.length > 2) throw invalidArgument('SRTP key parameters have too many "|" parts');
  for (const part of rest) {
    if (MKI.test(part)) throw invalidArgument('SRTP key parameters: MKI is not supported');
    if (!LIFETIME.test(part)) throw invalidArgument(`SRTP key parameters: ${JSON.stringify(part.slice(0, 40))} is neither a lifetime nor an MKI`);
  }
  if (!BASE64.test(b64)) throw invalidArgument('SRTP key parameters: the key is not base64 (expected inline:<base64>)');
  const raw = Buffer.from(b64, 'base64');
  const want = p.keyLength + p.saltLength;
  if (raw.length !== want) {
    throw invalidArgument(`${suite} needs ${want} bytes of master key and salt (${p.keyLength} + ${p.saltLength}), got ${raw.length}`);
  }
  return { masterKey: raw.subarray(0, p.keyLength), masterSalt: raw.subarray(p.keyLength) };
}

export function formatKeyParams(masterKey: Buffer, masterSalt: Buffer): string {
  return `inline:${Buffer.concat([masterKey, masterSalt]).toString('base64')}`;
}

export function generateKeyParams(suite: SrtpSuite): string {
  const p = SUITE_PARAMS[suite];
  const raw = randomBytes(p.keyLength + p.saltLength);
  return `inline:${raw.toString('base64')}`;
}

export interface CryptoAttribute {
  tag: number;
  /** As written in the SDP; may be a suite this service does not implement (see isSrtpSuite). */
  suite: string;
  keyParams: string;
  /** Session parameters (RFC 4568 6.3) that were accepted, e.g. WSH=64. */
  sessionParams: string[];
}

/**
 * Session parameters that change nothing for SRTP as implemented here: the window-size hint
 * is only a hint, and FEC is not used. UNENCRYPTED_SRTCP: the phone's E-clear SRTCP is read
 * (authenticated only); the service's own stays encrypted, which the E flag tells a reader.
 * UNAUTHENTICATED_SRTCP: the call's media is unaffected, but the phone's untagged SRTCP fails
 * authentication and is counted, not read.
 */
const HARMLESS_SESSION_PARAM = /^(?:UNENCRYPTED_SRTCP|UNAUTHENTICATED_SRTCP|WSH=\d+|FEC_ORDER=\w+)$/;

/**
 * The value of an SDP `a=crypto:` line (with or without the `a=crypto:` prefix):
 * `<tag> <suite> <key-params> [<session-params>...]`. Session parameters that would change
 * the packet format (UNENCRYPTED_SRTP, UNAUTHENTICATED_SRTP, KDR, FEC_KEY, unknown ones) are
 * refused: accepting them silently would produce a call with undecryptable audio. Unknown
 * parameters marked optional with a leading "-" (RFC 4568 6.3.7) are ignored.
 */
export function parseCryptoAttribute(value: string): CryptoAttribute {
  const text = value.trim().replace(/^a=crypto:/i, '');
  const parts = text.split(/\s+/);
  const [tagText = '', suite, keyParams, ...sessionParams] = parts;
  if (!/^\d{1,9}$/.test(tagText) || suite === undefined || keyParams === undefined) {
    throw invalidArgument(`not an a=crypto value (expected "<tag> <suite> inline:<key>"): ${JSON.stringify(value.slice(0, 80))}`);
  }
  const accepted: string[] = [];
  for (const param of sessionParams) {
    if (param.startsWith('-')) continue;
    if (!HARMLESS_SESSION_PARAM.test(param)) throw invalidArgument(`SRTP session parameter ${JSON.stringify(param.slice(0, 40))} is not supported`);
    accepted.push(param);
  }
  return { tag: Number(tagText), suite, keyParams, sessionParams: accepted };
}

export function formatCryptoAttribute(tag: number, suite: SrtpSuite, keyParams: string): string {
  return `${tag} ${suite} ${keyParams}`;
}
