import type { ForkFrame, ForkSource } from '../audio-fork/audio-fork.ts';
import type { StreamSpec } from './stream-spec.ts';

/** What one media stream carries, as its backend is told in the first messages: the spec asked for, on this call. */
export type StreamDescription = Omit<StreamSpec, 'protocol' | 'redialAttempts'> & {
  streamId: string;
  callId: string;
  port: number;
  tenantId: string;
};

/** One fork of the call a protocol sends: twilio sends both sides as two tracks, raw as one stereo stream. */
export interface StreamTrack {
  track: string;
  source: ForkSource;
  channels: number;
}

export type BackendMessage =
  | { kind: 'audio'; data: Buffer }
  | { kind: 'mark'; name: string }
  | { kind: 'clear' }
  | { kind: 'stop' }
  /** A message the protocol allows and this service has no use for (counted, not an error). */
  | { kind: 'ignored'; what: string };

/** WebSocket close codes the service closes a backend's connection with (RFC 6455 section 7.4.1). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  invalidPayload: 1007,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
} as const;

/** A backend's message that breaks its protocol: the connection closes with `code`; the call goes on. */
export class ProtocolError extends Error {
  readonly code: number;

  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/** A wire protocol: pure functions from the stream's events to messages, and from messages to commands. */
export interface WireProtocol {
  readonly name: 'twilio' | 'raw';
  readonly tracks: readonly StreamTrack[];
  /** Sent once the connection is open, before any audio. */
  opening(): string[];
  media(track: StreamTrack, frame: ForkFrame): string | Buffer;
  /** A mark the backend sent, answered once the audio before it left for the phone (or was cleared). */
  mark(name: string, cleared: boolean): string;
  dtmf(digit: string, durationMs: number): string;
  /** Raw only: what the service tells the backend beside audio (null: the protocol has no such message). */
  notice(kind: 'cleared' | 'underrun' | 'dropped', value: number): string | null;
  stop(reason: string): string;
  parse(data: Buffer, binary: boolean): BackendMessage;
}

export const MAX_MARK_NAME = 256;

export function parseJson(data: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(data.toString('utf8'));
  } catch {
    throw new ProtocolError(CLOSE.invalidPayload, 'a message is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProtocolError(CLOSE.invalidPayload, 'a message must be a JSON object');
  return v as Record<string, unknown>;
}

export function markName(v: unknown): string {
  if (typeof v !== 'string' || v.length > MAX_MARK_NAME) throw new ProtocolError(CLOSE.invalidPayload, `mark.name must be a string of at most ${MAX_MARK_NAME} characters`);
  return v;
}

/** A close frame's reason is at most 123 bytes of UTF-8 (RFC 6455 section 5.5); ws throws past it. */
export function closeReason(text: string): string {
  let out = text.slice(0, 123);
  while (Buffer.byteLength(out, 'utf8') > 123) out = out.slice(0, -1);
  return out;
}
