import { invalidArgument } from '../errors/media-error.ts';
import { SrtpSession } from './srtp/context.ts';
import { SrtcpSession } from './srtp/srtcp.ts';
import { formatKeyParams, generateKeyParams, parseKeyParams } from './srtp/sdes.ts';
import { SRTP_SUITES, type SrtpSuite } from './srtp/suites.ts';

export interface SrtpForCall {
  /** SRTP and SRTCP each way: the phone's key for what it sends, ours for what we send. */
  protection: { inbound: SrtpSession; outbound: SrtpSession; rtcpInbound: SrtcpSession; rtcpOutbound: SrtcpSession };
  /** What goes into the SDP answer: the same suite with the service's own key. */
  answer: { crypto_suite: string; key_params: string };
}

/**
 * SDES (RFC 4568): the remote's key decrypts what the phone sends; a fresh key of ours,
 * returned in the answer, encrypts what we send. Each direction has its own key.
 */
export function srtpForCall(remote: { crypto_suite: string; key_params: string }): SrtpForCall {
  const suite = supportedSuite(remote.crypto_suite);
  return srtpFromKeys({ crypto_suite: suite, key_params: remote.key_params }, { crypto_suite: suite, key_params: generateKeyParams(suite) });
}

/** The same contexts again from both keys: a call resumed by another process. */
export function srtpFromKeys(remote: { crypto_suite: string; key_params: string }, answer: { crypto_suite: string; key_params: string }): SrtpForCall {
  const suite = supportedSuite(remote.crypto_suite);
  const theirs = parseKeyParams(suite, remote.key_params);
  const ours = parseKeyParams(suite, answer.key_params);
  return {
    protection: {
      inbound: new SrtpSession(suite, theirs.masterKey, theirs.masterSalt),
      outbound: new SrtpSession(suite, ours.masterKey, ours.masterSalt),
      rtcpInbound: new SrtcpSession(suite, theirs.masterKey, theirs.masterSalt),
      rtcpOutbound: new SrtcpSession(suite, ours.masterKey, ours.masterSalt),
    },
    answer: { crypto_suite: suite, key_params: formatKeyParams(ours.masterKey, ours.masterSalt) },
  };
}

function supportedSuite(name: string): SrtpSuite {
  const suite = name.trim().toUpperCase() as SrtpSuite;
  if (!(SRTP_SUITES as readonly string[]).includes(suite)) {
    throw invalidArgument(`unsupported SRTP crypto suite ${JSON.stringify(name)}; supported: ${SRTP_SUITES.join(', ')}`);
  }
  return suite;
}
