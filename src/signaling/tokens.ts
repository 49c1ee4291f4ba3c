import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a room token grants: one participant, one room, until it expires. */
export interface RoomGrant {
  room: string;
  participant: string;
  /** Unix milliseconds. */
  exp: number;
  /** The room is this live call's (room = call_id); joining fails once the call ended. */
  call?: boolean;
  /**
   * Issued by the web demo to anyone who asked: it opens ordinary rooms only, never a
   * call's room, whenever the call started.
   */
  demo?: boolean;
}

export type TokenCheck = { ok: true; grant: RoomGrant } | { ok: false; why: string };

const VERSION = 'v1';

/**
 * Room tokens: `v1.<base64url JSON grant>.<base64url HMAC-SHA256>`. Stateless, so any
 * instance sharing the secret accepts them; a room-scoped grant cannot open another room.
 */
export class RoomTokens {
  readonly #secret: Buffer;
  readonly ephemeral: boolean;

  constructor(secret: string) {
    this.ephemeral = secret === '';
    this.#secret = this.ephemeral ? randomBytes(32) : Buffer.from(secret, 'utf8');
  }

  issue(grant: RoomGrant): string {
    const body = Buffer.from(JSON.stringify(grant), 'utf8').toString('base64url');
    return `${VERSION}.${body}.${this.#sign(body)}`;
  }

  verify(token: unknown, nowMs = Date.now()): TokenCheck {
    if (typeof token !== 'string' || token.length > 4096) return { ok: false, why: 'the token is missing or malformed' };
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== VERSION) return { ok: false, why: 'the token is malformed' };
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
    if (!isGrant(grant)) return { ok: false, why: 'the token is malformed' };
    if (grant.exp <= nowMs) return { ok: false, why: 'the token has expired' };
    return { ok: true, grant };
  }

  #sign(body: string): string {
    return createHmac('sha256', this.#secret).update(`${VERSION}.${body}`).digest('base64url');
  }
}

function isGrant(v: unknown): v is RoomGrant {
  if (typeof v !== 'object' || v === null) return false;
  const g = v as Record<string, unknown>;
  const optionalFlag = (k: string): boolean => g[k] === undefined || typeof g[k] === 'boolean';
  return typeof g['room'] === 'string' && typeof g['participant'] === 'string' && typeof g['exp'] === 'number' && optionalFlag('call') && optionalFlag('demo');
}

/** Room ids travel in URLs and logs: a conservative alphabet, like call ids. */
export const ROOM_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;
