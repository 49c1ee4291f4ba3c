export type SrtpSuite = 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32' | 'AEAD_AES_128_GCM' | 'AEAD_AES_256_GCM';

export interface SuiteParams {
  /** Master (and session) key bytes. */
  keyLength: number;
  /** Master (and session) salt bytes: 14 for AES-CM (RFC 3711), 12 for GCM (RFC 7714). */
  saltLength: number;
  /** Bytes appended to each packet: the truncated HMAC-SHA1, or the GCM tag. */
  tagLength: number;
  /** Session authentication key bytes; 0 for AEAD, which authenticates with the cipher key. */
  authKeyLength: number;
  aead: boolean;
}

/** Preference order for offers: AEAD first (one pass, stronger), then the widely deployed CM suites. */
export const SRTP_SUITES: readonly SrtpSuite[] = ['AEAD_AES_256_GCM', 'AEAD_AES_128_GCM', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'];

export const SUITE_PARAMS: Readonly<Record<SrtpSuite, Readonly<SuiteParams>>> = {
  AES_CM_128_HMAC_SHA1_80: { keyLength: 16, saltLength: 14, tagLength: 10, authKeyLength: 20, aead: false },
  AES_CM_128_HMAC_SHA1_32: { keyLength: 16, saltLength: 14, tagLength: 4, authKeyLength: 20, aead: false },
  AEAD_AES_128_GCM: { keyLength: 16, saltLength: 12, tagLength: 16, authKeyLength: 0, aead: true },
  AEAD_AES_256_GCM: { keyLength: 32, saltLength: 12, tagLength: 16, authKeyLength: 0, aead: true },
};

/** Exact match against the registered names; callers decide whether to fold case. */
export function isSrtpSuite(name: string): name is SrtpSuite {
  return Object.hasOwn(SUITE_PARAMS, name);
}
