import { status as Status } from '@grpc/grpc-js';
import type { ServerHttp2Stream } from 'node:http2';

/** gRPC's length-prefixed message framing: 1 flag byte, 4 bytes length, the message. */
export const FRAME_HEADER = 5;

/** The first whole message in `buf`, or null while it is still arriving. */
export function firstMessage(buf: Buffer): { compressed: boolean; message: Buffer } | null {
  if (buf.length < FRAME_HEADER) return null;
  const len = buf.readUInt32BE(1);
  if (buf.length < FRAME_HEADER + len) return null;
  return { compressed: buf[0] === 1, message: buf.subarray(FRAME_HEADER, FRAME_HEADER + len) };
}

export function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, FRAME_HEADER);
  return out;
}

/** grpc-message percent-encodes its UTF-8 bytes outside 0x20-0x7E, and '%' (the gRPC HTTP/2 protocol). */
export function encodeMessage(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** Ends a stream that was never forwarded with a status of our own (trailers-only). */
export function respondStatus(stream: ServerHttp2Stream, code: Status, message: string): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close();
    return;
  }
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeMessage(message) }, { endStream: true });
}

/** Ends a stream with one message and OK. */
export function respondMessage(stream: ServerHttp2Stream, message: Buffer): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(frame(message));
}
