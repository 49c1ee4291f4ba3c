import { status as Status } from '@grpc/grpc-js';
import { ZodError } from 'zod';
import { MediaError, type MediaErrorCode } from '../errors/media-error.ts';

const CODE_TO_STATUS: Record<MediaErrorCode, Status> = {
  invalid_argument: Status.INVALID_ARGUMENT,
  not_found: Status.NOT_FOUND,
  already_exists: Status.ALREADY_EXISTS,
  resource_exhausted: Status.RESOURCE_EXHAUSTED,
  failed_precondition: Status.FAILED_PRECONDITION,
  unauthenticated: Status.UNAUTHENTICATED,
  permission_denied: Status.PERMISSION_DENIED,
  unavailable: Status.UNAVAILABLE,
  unimplemented: Status.UNIMPLEMENTED,
  cancelled: Status.CANCELLED,
  deadline_exceeded: Status.DEADLINE_EXCEEDED,
  internal: Status.INTERNAL,
};

export interface MappedStatus {
  code: Status;
  details: string;
  /** False when the error was not meant for clients and must be logged with its stack. */
  expected: boolean;
}

export function describeZodError(err: ZodError): string {
  return err.issues
    .map((i) => `${i.path.length ? i.path.join('.') : 'request'}: ${i.message}`)
    .join('; ');
}

/** The one place domain errors become gRPC statuses; other errors' text never leaves. */
export function toGrpcStatus(err: unknown): MappedStatus {
  if (err instanceof MediaError) {
    return { code: CODE_TO_STATUS[err.code], details: err.message, expected: err.code !== 'internal' };
  }
  if (err instanceof ZodError) {
    return { code: Status.INVALID_ARGUMENT, details: `invalid request: ${describeZodError(err)}`, expected: true };
  }
  return { code: Status.INTERNAL, details: 'internal error', expected: false };
}

export function statusName(code: Status): string {
  return Status[code] ?? String(code);
}
