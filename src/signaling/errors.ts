import { ZodError } from 'zod';
import { MediaError, type MediaErrorCode } from '../errors/media-error.ts';
import { describeZodError } from '../grpc/status.ts';
import type { SignalingErrorCode } from './contract.ts';

const CODE: Record<MediaErrorCode, SignalingErrorCode> = {
  invalid_argument: 'invalid_argument',
  not_found: 'not_found',
  already_exists: 'failed_precondition',
  resource_exhausted: 'resource_exhausted',
  failed_precondition: 'failed_precondition',
  unauthenticated: 'unauthenticated',
  permission_denied: 'permission_denied',
  unavailable: 'unavailable',
  unimplemented: 'invalid_argument',
  cancelled: 'unavailable',
  deadline_exceeded: 'unavailable',
  internal: 'internal',
};

/** The one mapping from an error to a socket.io ack; only MediaError messages reach clients. */
export function toAckError(err: unknown): { code: SignalingErrorCode; message: string; expected: boolean } {
  if (err instanceof MediaError) return { code: CODE[err.code], message: err.message, expected: err.code !== 'internal' };
  if (err instanceof ZodError) return { code: 'invalid_argument', message: `invalid request: ${describeZodError(err)}`, expected: true };
  return { code: 'internal', message: 'internal error', expected: false };
}
