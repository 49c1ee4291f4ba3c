/**
 * Standard base64 (RFC 4648 §4, padded) decoded, or null when it is not exactly that. Node's
 * decoder skips characters outside the alphabet and stops at '=', so a string with any of
 * them decodes to fewer bytes than its length promises; only the URL-safe letters, which it
 * accepts, need a look of their own. This replaced a whole-string regular expression that
 * cost 5% of the service's time with 200 Twilio streams.
 */
export function decodeBase64(s: string): Buffer | null {
  if (s.length % 4 !== 0) return null;
  if (s.includes('-') || s.includes('_')) return null;
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const bytes = Buffer.from(s, 'base64');
  return bytes.length === (s.length / 4) * 3 - pad ? bytes : null;
}
