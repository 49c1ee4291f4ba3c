import { SignedTokens, type TokenCheck as BaseCheck } from '../util/signed-tokens.ts';

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
  /** May mute, deafen and kick participants of the conference of this room. */
  moderator?: boolean;
}

export type TokenCheck = BaseCheck<RoomGrant>;

/**
 * Room tokens: `v1.<base64url JSON grant>.<base64url HMAC-SHA256>`. Stateless, so any
 * instance sharing the secret accepts them; a room-scoped grant cannot open another room.
 */
export class RoomTokens extends SignedTokens<RoomGrant> {
  constructor(secret: string) {
    super(secret, 'v1', isGrant);
  }
}

function isGrant(v: unknown): v is RoomGrant {
  if (typeof v !== 'object' || v === null) return false;
  const g = v as Record<string, unknown>;
  const optionalFlag = (k: string): boolean => g[k] === undefined || typeof g[k] === 'boolean';
  return typeof g['room'] === 'string' && typeof g['participant'] === 'string' && typeof g['exp'] === 'number' && optionalFlag('call') && optionalFlag('demo') && optionalFlag('moderator');
}

/** Room ids travel in URLs and logs: a conservative alphabet, like call ids. */
export const ROOM_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;
