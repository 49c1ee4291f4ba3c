import { z } from 'zod';

// Requests as proto-loader decodes them (keepCase, defaults): proto3 scalars arrive as their
// zero value when unset, so "required" means "not the zero value" here.

const port = (name: string) =>
  z.number().int().refine((v) => v !== 0, `${name} is required`).refine((v) => v > 0 && v <= 65535, `${name} must be a UDP port (1-65535)`);

const optionalUint = z.number().int().nonnegative().optional();

const CONFERENCE_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const CONFERENCE_ID_RULE = '1-128 characters of A-Z a-z 0-9 . _ : @ -';

/** A call by port, or a conference's mix by id: exactly one of them. */
const portOrConference = {
  server_rtp_port: z.number().int().nonnegative().max(65535, 'server_rtp_port must be a UDP port (1-65535)').default(0),
  conference_id: z.string().default('').refine((v) => v === '' || CONFERENCE_ID.test(v), `conference_id must be ${CONFERENCE_ID_RULE}`),
};
const oneTarget = (r: { server_rtp_port: number; conference_id: string }): boolean => (r.server_rtp_port !== 0) !== (r.conference_id !== '');
const ONE_TARGET = { error: 'server_rtp_port is required (or, for a conference, conference_id instead)' };

export const srtpParameters = z.object({
  crypto_suite: z.string().min(1, 'srtp.crypto_suite is required'),
  key_params: z.string().min(1, 'srtp.key_params is required'),
});

/** A leg's codec by its SDP encoding name (any case); empty: G.711, learned from the phone's packets. */
export const LEG_CODECS = ['PCMU', 'PCMA', 'OPUS'] as const;
export const OPUS_DEFAULT_PT = 111;

/** Longest call id accepted: SIP Call-IDs are tens of characters; this leaves room for any PBX. */
export const MAX_CALL_ID = 256;

/**
 * Why `v` cannot be a call id, or null. A call id is a SIP Call-ID (RFC 3261: word ["@" word]),
 * so printable ASCII without spaces; anything else is refused, never normalised, because two
 * different ids must never become one. Invalid UTF-8 arrives as U+FFFD from the decoder:
 * two malformed ids would otherwise decode to the same string.
 */
export function callIdProblem(v: string, field = 'call_id'): string | null {
  if (v.length === 0) return `${field} is required`;
  if (v.includes('\uFFFD')) return `${field} is not valid UTF-8`;
  if (v.length > MAX_CALL_ID) return `${field} is longer than ${MAX_CALL_ID} characters`;
  if (!/^[\x21-\x7e]+$/.test(v)) return `${field} must be a SIP Call-ID: printable ASCII without spaces or control characters`;
  return null;
}

const callId = (field = 'call_id') =>
  z.string().superRefine((v, ctx) => {
    const why = callIdProblem(v, field);
    if (why) ctx.addIssue({ code: 'custom', message: why });
  });

/** An optional call id: empty means "not given". */
const optionalCallId = (field = 'call_id') =>
  z.string().default('').superRefine((v, ctx) => {
    const why = v === '' ? null : callIdProblem(v, field);
    if (why) ctx.addIssue({ code: 'custom', message: why });
  });

export const allocatePortRequest = z.object({
  call_id: callId(),
  srtp: srtpParameters.nullish(),
  codec: z
    .string()
    .default('')
    .transform((v) => v.trim().toUpperCase())
    .pipe(z.enum(['', ...LEG_CODECS], { error: (i) => `codec must be PCMU, PCMA or OPUS (or empty: learned from the phone's packets), got ${JSON.stringify(i.input)}` })),
  opus_payload_type: z
    .number()
    .int()
    .default(0)
    .refine((v) => v === 0 || (v >= 96 && v <= 127), { error: (i) => `opus_payload_type must be a dynamic RTP payload type (96-127), got ${String(i.input)}` })
    .transform((v) => v || OPUS_DEFAULT_PT),
  conference_id: z.string().default('').refine((v) => v === '' || CONFERENCE_ID.test(v), `conference_id must be ${CONFERENCE_ID_RULE}`),
});

export const releasePortRequest = z.object({ rtp_port: port('rtp_port') });

export const playAudioRequest = z.object({
  audio_uri: z.string().min(1, 'audio_uri is required'),
  server_rtp_port: port('server_rtp_port'),
  rtp_target_addr: z.string().default(''),
});

export const recordAudioRequest = z.object({
  server_rtp_port: port('server_rtp_port'),
  target_sample_rate: optionalUint,
});

export const startRecordingRequest = z
  .object({
    ...portOrConference,
    output_uri: z.string().min(1, 'output_uri is required'),
    sample_rate: optionalUint,
    format: z.string().optional(),
    call_id: optionalCallId(),
    trace_id: z.string().max(256, 'trace_id is longer than 256 characters').default(''),
    channel_layout: z.string().optional(),
    participant_tracks: z.boolean().default(false),
  })
  .refine(oneTarget, ONE_TARGET)
  .refine((r) => !r.participant_tracks || r.conference_id !== '', { error: 'participant_tracks applies to a conference (conference_id)' });

export const streamAudioRequest = z.object({
  ...portOrConference,
  source: z.enum(['AUDIO_SOURCE_CALLER', 'AUDIO_SOURCE_SERVICE', 'AUDIO_SOURCE_MIXED', 'AUDIO_SOURCE_STEREO']).default('AUDIO_SOURCE_CALLER'),
  sample_rate: z.number().int().nonnegative().default(0),
  frame_ms: z.number().int().nonnegative().default(0),
  encoding: z.enum(['AUDIO_ENCODING_PCM_S16LE', 'AUDIO_ENCODING_PCMU', 'AUDIO_ENCODING_PCMA', 'AUDIO_ENCODING_OPUS']).default('AUDIO_ENCODING_PCM_S16LE'),
  max_queue_ms: z.number().int().nonnegative().default(0),
}).refine(oneTarget, ONE_TARGET);
export type StreamAudioRequest = z.infer<typeof streamAudioRequest>;

export const createRoomTokenRequest = z.object({
  room_id: z.string().regex(/^[A-Za-z0-9._:@-]{1,128}$/, 'room_id is required: 1-128 characters of A-Z a-z 0-9 . _ : @ -'),
  participant: z.string().max(64, 'participant is longer than 64 characters').default(''),
  ttl_seconds: z.number().int().nonnegative().default(0),
  moderator: z.boolean().default(false),
});
export type CreateRoomTokenRequest = z.infer<typeof createRoomTokenRequest>;

const stringMap = (name: string) => z.record(z.string(), z.string()).default({}).refine((m) => Object.keys(m).length <= 32, `${name}: at most 32 entries`);

const mediaStreamFormat = z
  .object({
    protocol: z.enum(['MEDIA_STREAM_PROTOCOL_TWILIO', 'MEDIA_STREAM_PROTOCOL_RAW']).default('MEDIA_STREAM_PROTOCOL_TWILIO'),
    source: z.enum(['AUDIO_SOURCE_CALLER', 'AUDIO_SOURCE_SERVICE', 'AUDIO_SOURCE_MIXED', 'AUDIO_SOURCE_STEREO']).default('AUDIO_SOURCE_CALLER'),
    encoding: z.enum(['AUDIO_ENCODING_PCM_S16LE', 'AUDIO_ENCODING_PCMU', 'AUDIO_ENCODING_PCMA', 'AUDIO_ENCODING_OPUS']).nullish(),
    sample_rate: z.number().int().nonnegative().default(0),
    frame_ms: z.number().int().nonnegative().default(0),
    bidirectional: z.boolean().default(false),
    custom_parameters: stringMap('format.custom_parameters'),
  })
  .nullish()
  .transform((f) => {
    const v = f ?? { protocol: 'MEDIA_STREAM_PROTOCOL_TWILIO' as const, source: 'AUDIO_SOURCE_CALLER' as const, encoding: null, sample_rate: 0, frame_ms: 0, bidirectional: false, custom_parameters: {} };
    const twilio = v.protocol === 'MEDIA_STREAM_PROTOCOL_TWILIO';
    return { ...v, encoding: v.encoding ?? (twilio ? 'AUDIO_ENCODING_PCMU' : 'AUDIO_ENCODING_PCM_S16LE') };
  });

/** A call named by port or by call id (one of them). */
const callRef = {
  server_rtp_port: z.number().int().nonnegative().max(65535, 'server_rtp_port must be a UDP port (1-65535)').default(0),
  call_id: optionalCallId(),
};
const hasCall = (r: { server_rtp_port: number; call_id: string }): boolean => r.server_rtp_port !== 0 || r.call_id !== '';
const CALL_REQUIRED = { error: 'the call is required: server_rtp_port or call_id' };

export const startMediaStreamRequest = z
  .object({
    ...callRef,
    url: z.string().min(1, 'url is required').max(2048, 'url is longer than 2048 characters'),
    headers: stringMap('headers'),
    query: stringMap('query'),
    format: mediaStreamFormat,
    redial_attempts: z.number().int().nonnegative().default(0),
  })
  .refine(hasCall, CALL_REQUIRED);
export type StartMediaStreamRequest = z.infer<typeof startMediaStreamRequest>;

export const stopMediaStreamRequest = z
  .object({ ...callRef, stream_id: z.string().regex(/^MZ[0-9a-f]{32}$/, 'stream_id is required: the id StartMediaStream answered') })
  .refine(hasCall, CALL_REQUIRED);
export type StopMediaStreamRequest = z.infer<typeof stopMediaStreamRequest>;

export const getCallQualityRequest = z.object(callRef).refine(hasCall, CALL_REQUIRED);
export type GetCallQualityRequest = z.infer<typeof getCallQualityRequest>;

export const getRoomQualityRequest = z.object({
  room_id: z.string().regex(/^[A-Za-z0-9._:@-]{1,128}$/, 'room_id is required: 1-128 characters of A-Z a-z 0-9 . _ : @ -'),
});

export const createMediaStreamTokenRequest = z
  .object({ ...callRef, format: mediaStreamFormat, ttl_seconds: z.number().int().nonnegative().default(0) })
  .refine(hasCall, CALL_REQUIRED);
export type CreateMediaStreamTokenRequest = z.infer<typeof createMediaStreamTokenRequest>;

const conferenceId = z.string().regex(CONFERENCE_ID, `conference_id is required: ${CONFERENCE_ID_RULE}`);
const participantId = z.string().max(256, 'participant_id is longer than 256 characters');
const gainDb = z.number().refine((v) => Number.isFinite(v) && v >= -40 && v <= 20, { error: (i) => `gain_db must be from -40 to 20, got ${String(i.input)}` });
const toggle = z.enum(['TOGGLE_UNCHANGED', 'TOGGLE_ON', 'TOGGLE_OFF']).default('TOGGLE_UNCHANGED');

export const createConferenceRequest = z.object({
  conference_id: conferenceId,
  max_participants: z.number().int().nonnegative().default(0),
  end_when_empty: z.boolean().default(false),
  mix_all: z.boolean().default(false),
  talk_threshold_dbfs: z.number().int().min(-96, 'talk_threshold_dbfs must be from -96 to -1').max(0, 'talk_threshold_dbfs must be from -96 to -1').default(0),
  talk_hold_ms: z.number().int().nonnegative().max(10_000, 'talk_hold_ms must be at most 10000').default(0),
});
export const conferenceRequest = z.object({ conference_id: conferenceId });
export const addToConferenceRequest = z
  .object({ conference_id: conferenceId, ...callRef, participant_id: participantId.default(''), muted: z.boolean().default(false), deaf: z.boolean().default(false), gain_db: gainDb.default(0) })
  .refine(hasCall, CALL_REQUIRED);
export const removeFromConferenceRequest = z.object({ conference_id: conferenceId, participant_id: participantId.min(1, 'participant_id is required'), kick: z.boolean().default(false) });
export const updateConferenceParticipantRequest = z.object({
  conference_id: conferenceId,
  participant_id: participantId.min(1, 'participant_id is required'),
  mute: toggle,
  deaf: toggle,
  set_gain: z.boolean().default(false),
  gain_db: gainDb.default(0),
});
export const playToConferenceRequest = z.object({ conference_id: conferenceId, audio_uri: z.string().min(1, 'audio_uri is required'), participant_id: participantId.default('') });

export const stopRecordingRequest = z.object(portOrConference).refine(oneTarget, ONE_TARGET);

export const bridgeCallsRequest = z
  .object({ server_rtp_port_a: port('server_rtp_port_a'), server_rtp_port_b: port('server_rtp_port_b') })
  .refine((r) => r.server_rtp_port_a !== r.server_rtp_port_b, {
    path: ['server_rtp_port_b'],
    error: (i) => `a call cannot be bridged with itself (port ${(i.input as { server_rtp_port_a: number }).server_rtp_port_a} given twice)`,
  });
export type BridgeCallsRequest = z.infer<typeof bridgeCallsRequest>;

export const unbridgeCallsRequest = z.object({ server_rtp_port: port('server_rtp_port') });
export type UnbridgeCallsRequest = z.infer<typeof unbridgeCallsRequest>;

export type SrtpParameters = z.infer<typeof srtpParameters>;
export type AllocatePortRequest = z.infer<typeof allocatePortRequest>;
export type ReleasePortRequest = z.infer<typeof releasePortRequest>;
export type PlayAudioRequest = z.infer<typeof playAudioRequest>;
export type RecordAudioRequest = z.infer<typeof recordAudioRequest>;
export type StartRecordingRequest = z.infer<typeof startRecordingRequest>;
export type StopRecordingRequest = z.infer<typeof stopRecordingRequest>;

export interface StreamAudioToCallRequest {
  call_id: string;
  audio_chunk: Buffer;
}
export interface StreamAudioToCallResponse {
  success: boolean;
  error_message: string;
}
