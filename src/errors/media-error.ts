/**
 * The closed set of domain error codes. Each edge (gRPC, socket.io) maps them once;
 * messages of a MediaError are written for clients, any other error's text is not.
 */
export type MediaErrorCode =
  | 'invalid_argument'
  | 'not_found'
  | 'already_exists'
  | 'resource_exhausted'
  | 'failed_precondition'
  | 'unauthenticated'
  | 'permission_denied'
  | 'unavailable'
  | 'unimplemented'
  | 'cancelled'
  | 'deadline_exceeded'
  | 'internal';

export class MediaError extends Error {
  override name = 'MediaError';
  readonly code: MediaErrorCode;

  constructor(code: MediaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export const invalidArgument = (message: string): MediaError => new MediaError('invalid_argument', message);
export const notFound = (message: string): MediaError => new MediaError('not_found', message);
/** The call did not end, this instance did: UNAVAILABLE tells a client to try again elsewhere. */
export const shuttingDown = (): MediaError => new MediaError('unavailable', 'the media service is shutting down');
