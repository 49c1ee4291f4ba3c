import { randomUUID } from 'node:crypto';

export type GenericEventType =
  | 'call.media.playback.finished'
  | 'call.media.dtmf.received'
  | 'call.media.session.timeout'
  | 'call.media.session.closed';

/** The platform's GenericEvent: payload_json is a string holding JSON. */
export interface GenericEvent {
  event_type: GenericEventType;
  trace_id: string;
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

export interface PlatformEvent {
  /** Routing key on the topic exchange: the event type. */
  type: GenericEventType | 'call.recording.available';
  id: string;
  body: GenericEvent | RecordingAvailableEvent;
}

export function genericEvent(type: GenericEventType, e: { traceId: string; tenantId: string; payload: Record<string, unknown> }): PlatformEvent {
  return {
    type,
    id: randomUUID(),
    body: { event_type: type, trace_id: e.traceId, timestamp: new Date().toISOString(), tenant_id: e.tenantId, payload_json: JSON.stringify(e.payload) },
  };
}

export function recordingAvailableEvent(e: { traceId: string; callId: string; tenantId: string; recordingUri: string; publicUrl: string }): PlatformEvent {
  return {
    type: 'call.recording.available',
    id: randomUUID(),
    body: {
      event_type: 'call.recording.available',
      trace_id: e.traceId,
      call_id: e.callId,
      timestamp: new Date().toISOString(),
      recording_uri: e.recordingUri,
      public_url: e.publicUrl,
    },
  };
}

/** Publishing never throws and never waits: it is called from the media path. */
export interface EventPublisher {
  publish(event: PlatformEvent): void;
  close(): Promise<void>;
}
