import { randomUUID } from 'node:crypto';
import type { CallQuality } from '../quality/call-quality.ts';

/** What each GenericEvent type carries in payload_json (before it is stringified). */
export interface GenericPayloads {
  'call.media.playback.finished': { callId: string; uri: string; status?: string };
  /** conferenceId: the conference the call is in, when it is in one. */
  'call.media.dtmf.received': { callId: string; digit: string; durationMs: number; conferenceId?: string };
  'call.media.session.timeout': { callId: string; port: number; idleSeconds: number };
  /** quality: what the service measured of the call (GetCallQuality's answer at its end). */
  'call.media.session.closed': { callId: string; port: number; reason: string; quality?: CallQuality };
  /** The process that carried the call died: its media is gone (the platform should end the call or re-offer it). */
  'call.media.session.lost': { callId: string; port: number; reason: string };
  /** Conferences: who joined and left (reason: removed, kicked, call_ended, conference_ended, media_restarted), who talks, and the end. */
  'call.media.conference.participant.joined': { conferenceId: string; participantId: string; callId: string; kind: string };
  'call.media.conference.participant.left': { conferenceId: string; participantId: string; callId: string; kind: string; reason: string };
  /** atUnixMs: when the frame that started or stopped it was mixed. */
  'call.media.conference.talking': { conferenceId: string; participantId: string; callId: string; talking: boolean; atUnixMs: number };
  'call.media.conference.ended': { conferenceId: string; reason: string; durationMs: number };
  /** A live call's quality crossed a configured threshold (once per call): `crossed` names which. */
  'call.media.quality.degraded': { callId: string; port: number; crossed: string[]; quality: CallQuality };
  /** A WebSocket media stream's backend went away while the call went on. */
  'call.media.stream.disconnected': { callId: string; streamId: string; code: number; reason: string; redialing: boolean };
}

export type GenericEventType = keyof GenericPayloads;
export type PlatformEventType = GenericEventType | 'call.recording.available';

/** The platform's GenericEvent: payload_json is a string holding JSON, not an object. */
export interface GenericEvent<T extends GenericEventType = GenericEventType> {
  event_type: T;
  trace_id: string;
  /** ISO 8601. */
  timestamp: string;
  tenant_id: string;
  payload_json: string;
}

export interface RecordingAvailableEvent {
  event_type: 'call.recording.available';
  trace_id: string;
  call_id: string;
  timestamp: string;
  recording_uri: string;
  public_url: string;
}

/**
 * One event as handed to a publisher: `type` is the routing key, `id` the AMQP messageId (a
 * consumer de-duplicates on it, since delivery is at-least-once), `body` the JSON sent.
 */
export type PlatformEvent =
  | { [K in GenericEventType]: { type: K; id: string; createdAt: Date; body: GenericEvent<K> } }[GenericEventType]
  | { type: 'call.recording.available'; id: string; createdAt: Date; body: RecordingAvailableEvent };

export function genericEvent<T extends GenericEventType>(
  type: T,
  e: { traceId: string; tenantId: string; payload: GenericPayloads[T] },
): PlatformEvent {
  const createdAt = new Date();
  const body: GenericEvent<T> = {
    event_type: type,
    trace_id: e.traceId,
    timestamp: createdAt.toISOString(),
    tenant_id: e.tenantId,
    payload_json: JSON.stringify(e.payload),
  };
  // TS cannot narrow the mapped union by a generic T; the body above is built from the same T.
  return { type, id: randomUUID(), createdAt, body } as PlatformEvent;
}

export function recordingAvailableEvent(e: {
  traceId: string;
  callId: string;
  recordingUri: string;
  publicUrl: string;
  /** Accepted for symmetry with genericEvent; the platform's shape for this event has no tenant field. */
  tenantId?: string;
}): PlatformEvent {
  const createdAt = new Date();
  return {
    type: 'call.recording.available',
    id: randomUUID(),
    createdAt,
    body: {
      event_type: 'call.recording.available',
      trace_id: e.traceId,
      call_id: e.callId,
      timestamp: createdAt.toISOString(),
      recording_uri: e.recordingUri,
      public_url: e.publicUrl,
    },
  };
}

/** Called from the media path: publish never throws and never waits for I/O. */
export interface EventPublisher {
  publish(event: PlatformEvent): void;
  /** Delivers what it can within a short bound, then releases everything; idempotent. */
  close(): Promise<void>;
}
