export type SrtpSuite = 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32' | 'AEAD_AES_128_GCM' | 'AEAD_AES_256_GCM';

export interface SuiteParams {
  /** Master (and session) key bytes. */
  keyLength: number;
  /** Master (and session) salt bytes. */
  saltLength: number;
  /** Bytes appended to each packet: HMAC-SHA1 truncation, or the GCM tag. */
  tagLength: number;
  aead: boolean;
}

/** Preference order for offers: AEAD first (one pass, stronger), then the common CM suites. */
export const SRTP_SUITES: readonly SrtpSuite[] = ['AEAD_AES_256_GCM', 'AEAD_AES_128_GCM', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'];

export const SUITE_PARAMS: Readonly<Record<SrtpSuite, SuiteParams>> = {
  AES_CM_128_HMAC_SHA1_80: { keyLength: 16, saltLength: 14, tagLength: 10, aead: false },
  AES_CM_128_HMAC_SHA1_32: { keyLength: 16, saltLength: 14, tagLength: 4, aead: false },
  AEAD_AES_128_GCM: { keyLength: 16, saltLength: 12, tagLength: 16, aead: true },
  AEAD_AES_256_GCM: { keyLength: 32, saltLength: 12, tagLength: 16, aead: true },
};
