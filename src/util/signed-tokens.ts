import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type TokenCheck<G> = { ok: true; grant: G } | { ok: false; why: string };

/**
 * Stateless tokens `<version>.<base64url JSON grant>.<base64url HMAC-SHA256>`: any process
 * sharing the secret accepts them. The version is signed too, so a token of one kind (a room
 * token) is never accepted as another (a media stream token).
 */
export class SignedTokens<G extends { exp: number }> {
  readonly #secret: Buffer;
  readonly #version: string;
  readonly #isGrant: (v: unknown) => v is G;
  /** No secret was configured: a random one, so tokens die with this process. */
  readonly ephemeral: boolean;

  constructor(secret: string | Buffer, version: string, isGrant: (v: unknown) => v is G) {
    this.ephemeral = secret === '';
    this.#secret = typeof secret !== 'string' ? secret : this.ephemeral ? randomBytes(32) : Buffer.from(secret, 'utf8');
    this.#version = version;
    this.#isGrant = isGrant;
  }

  /** Tokens of another kind under the same secret. */
  sibling<H extends { exp: number }>(version: string, isGrant: (v: unknown) => v is H): SignedTokens<H> {
    const t = new SignedTokens<H>(this.#secret, version, isGrant);
    return t;
  }

  issue(grant: G): string {
    const body = Buffer.from(JSON.stringify(grant), 'utf8').toString('base64url');
    return `${this.#version}.${body}.${this.#sign(body)}`;
  }

  verify(token: unknown, nowMs = Date.now()): TokenCheck<G> {
    if (typeof token !== 'string' || token.length > 4096) return { ok: false, why: 'the token is missing or malformed' };
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== this.#version) return { ok: false, why: 'the token is malformed' };
    const [, body, sig] = parts as [string, string, string];
    const expected = Buffer.from(this.#sign(body), 'utf8');
    const given = Buffer.from(sig, 'utf8');
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, why: 'the token signature is not valid' };
    let grant: unknown;
    try {
      grant = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, why: 'the token is malformed' };
    }
    if (!this.#isGrant(grant)) return { ok: false, why: 'the token is malformed' };
    if (grant.exp <= nowMs) return { ok: false, why: 'the token has expired' };
    return { ok: true, grant };
  }

  #sign(body: string): string {
    return createHmac('sha256', this.#secret).update(`${this.#version}.${body}`).digest('base64url');
  }
}
