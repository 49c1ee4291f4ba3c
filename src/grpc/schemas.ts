import { z } from 'zod';

// Requests as proto-loader decodes them (keepCase, defaults): proto3 scalars arrive as their
// zero value when unset, so "required" means "not the zero value" here.

const port = (name: string) =>
  z.number().int().refine((v) => v !== 0, `${name} is required`).refine((v) => v > 0 && v <= 65535, `${name} must be a UDP port (1-65535)`);

const optionalUint = z.number().int().nonnegative().optional();

export const srtpParameters = z.object({
  crypto_suite: z.string().min(1, 'srtp.crypto_suite is required'),
  key_params: z.string().min(1, 'srtp.key_params is required'),
});

export const allocatePortRequest = z.object({
  call_id: z.string().trim().min(1, 'call_id is required').max(512, 'call_id is longer than 512 characters'),
  srtp: srtpParameters.nullish(),
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

export const startRecordingRequest = z.object({
  server_rtp_port: port('server_rtp_port'),
  output_uri: z.string().min(1, 'output_uri is required'),
  sample_rate: optionalUint,
  format: z.string().optional(),
  call_id: z.string().default(''),
  trace_id: z.string().default(''),
  channel_layout: z.string().optional(),
});

export const streamAudioRequest = z.object({
  server_rtp_port: port('server_rtp_port'),
  source: z.enum(['AUDIO_SOURCE_CALLER', 'AUDIO_SOURCE_SERVICE', 'AUDIO_SOURCE_MIXED', 'AUDIO_SOURCE_STEREO']).default('AUDIO_SOURCE_CALLER'),
  sample_rate: z.number().int().nonnegative().default(0),
  frame_ms: z.number().int().nonnegative().default(0),
  encoding: z.enum(['AUDIO_ENCODING_PCM_S16LE', 'AUDIO_ENCODING_PCMU', 'AUDIO_ENCODING_PCMA']).default('AUDIO_ENCODING_PCM_S16LE'),
  max_queue_ms: z.number().int().nonnegative().default(0),
});
export type StreamAudioRequest = z.infer<typeof streamAudioRequest>;

export const stopRecordingRequest = z.object({ server_rtp_port: port('server_rtp_port') });

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
export interface RecordAudioResponse {
  audio_data: Buffer;
  media_type: string;
}
