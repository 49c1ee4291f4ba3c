import type * as grpc from '@grpc/grpc-js';
import type { Config } from '../config/schema.ts';
import { MediaError } from '../errors/media-error.ts';
import { playAudio } from '../playback/play-audio.ts';
import type { PromptLoader } from '../playback/prompt-loader.ts';
import type { SessionRegistry } from '../sessions/session-registry.ts';
import type { RecordingManager } from '../recording/recording-manager.ts';
import type { ForkMetrics } from '../audio-fork/fork-metrics.ts';
import { recordAudio, streamAudio } from './audio-out.ts';
import { injectAudio, streamAudioToCall } from './audio-in.ts';
import { srtpForCall } from '../rtp-bridge/srtp-negotiation.ts';
import { bidiStream, serverStream, unary, type RpcDeps } from './middleware.ts';
import * as s from './schemas.ts';
import type { RoomTokens } from '../signaling/tokens.ts';
import type { CallBridges } from '../bridge/call-bridges.ts';
import type { MediaStreams } from '../media-streams/media-streams.ts';
import { streamSpecOf, streamUrl, type StreamSpec } from '../media-streams/stream-spec.ts';
import type { CallSession } from '../sessions/call-session.ts';
import type { TapHost } from '../sessions/media-host.ts';
import type { WebRtcQuality } from '../quality/webrtc-quality.ts';
import type { Encoded } from './wire.ts';
import { callQuality } from '../quality/call-quality.ts';
import type { Conferences } from '../conference/conferences.ts';
import { conferenceHandlers } from './conference-service.ts';

export interface MediaServiceDeps extends RpcDeps {
  tokens: RoomTokens;
  config: Readonly<Config>;
  sessions: SessionRegistry;
  prompts: PromptLoader;
  recordings: RecordingManager;
  forkMetrics: ForkMetrics;
  bridges: CallBridges;
  mediaStreams: MediaStreams;
  conferences: Conferences;
  /** The browsers of a room, as mediasoup measures them; undefined when no such room is open here. */
  roomQuality: (roomId: string) => Promise<WebRtcQuality[]> | undefined;
}

type StreamFormatRequest = s.StartMediaStreamRequest['format'];
const specOf = (f: StreamFormatRequest, redialAttempts: number): StreamSpec =>
  streamSpecOf({ ...f, encoding: f.encoding, redial_attempts: redialAttempts });

/** The contract's seven RPCs and the additions: each validated at the edge, traced, timed and counted. */
export function mediaServiceHandlers(deps: MediaServiceDeps): grpc.UntypedServiceImplementation {
  const { sessions, config } = deps;
  // A wildcard listen address says nothing to a phone: then the address is left to signalling.
  const listen = config.rtp.listen_address;
  const advertised = config.rtp.advertised_ip || (listen === '0.0.0.0' || listen === '::' || listen === '' ? '' : listen);
  const sessionOf = (r: { server_rtp_port: number; call_id: string }): CallSession => sessions.requireRef(r);
  const callOfRef = (r: { server_rtp_port: number; call_id: string }): { callId: string; tenantId: string } | string | undefined => r.call_id || callOfPort(r.server_rtp_port);
  const callOfPort = (port: number): { callId: string; tenantId: string } | undefined => {
    const s = sessions.byPort(port);
    return s ? { callId: s.callId, tenantId: s.tenantId } : undefined;
  };
  /** A call by port, or a conference's whole mix. */
  const hostOf = (r: { server_rtp_port: number; conference_id: string }): TapHost => (r.conference_id ? deps.conferences.mixOf(r.conference_id) : sessions.require(r.server_rtp_port));
  return {
    ...conferenceHandlers(deps),
    AllocatePort: unary(deps, { method: 'AllocatePort', schema: s.allocatePortRequest, callIdOf: (r) => r.call_id }, async (req, ctx) => {
      const existing = sessions.byCallId(req.call_id);
      if (existing) return { rtp_port: existing.port, rtp_address: advertised, ...(existing.srtpAnswer ? { srtp: existing.srtpAnswer } : {}) };
      const srtp = req.srtp ? srtpForCall(req.srtp) : undefined;
      if (req.codec === 'OPUS' && req.opus_payload_type === config.rtp.telephone_event_payload_type) {
        throw new MediaError('invalid_argument', `opus_payload_type ${req.opus_payload_type} is the telephone-event payload type; give Opus another one`);
      }
      const session = await sessions.allocate({
        callId: req.call_id,
        traceId: ctx.traceId,
        tenantId: ctx.tenantId ?? config.service.tenant_id,
        ...(srtp && req.srtp ? { srtp: { remote: req.srtp, answer: srtp.answer, ...srtp.protection } } : {}),
        ...(req.codec ? { codec: req.codec } : {}),
        ...(req.codec === 'OPUS'
          ? { opus: { payloadType: req.opus_payload_type, complexity: config.transcode.opus_complexity, bitrate: config.transcode.opus_bitrate } }
          : {}),
      });
      return { rtp_port: session.port, rtp_address: advertised, ...(session.srtpAnswer ? { srtp: session.srtpAnswer } : {}) };
    }),
    ReleasePort: unary(deps, { method: 'ReleasePort', schema: s.releasePortRequest, callIdOf: (r) => callOfPort(r.rtp_port) }, async (req, ctx) => {
      if (!sessions.release(req.rtp_port)) {
        // The platform does not wait for this answer; a double release is harmless.
        ctx.log.info({ event: 'RELEASE_UNKNOWN_PORT', attributes: { 'rtp.port': req.rtp_port } }, 'ReleasePort for a port with no session');
      }
      return { success: true };
    }),
    PlayAudio: unary(deps, { method: 'PlayAudio', schema: s.playAudioRequest, callIdOf: (r) => callOfPort(r.server_rtp_port) }, async (req, ctx) => {
      const session = sessions.require(req.server_rtp_port);
      const message = await playAudio(session, { uri: req.audio_uri, targetAddr: req.rtp_target_addr, traceId: ctx.traceId }, deps.prompts, config.playback.data_uri_max_bytes);
      return { success: true, message };
    }),
    RecordAudio: serverStream<s.RecordAudioRequest, Encoded>(
      deps,
      { method: 'RecordAudio', schema: s.recordAudioRequest, callIdOf: (r) => callOfPort(r.server_rtp_port) },
      (req, ctx, call) => recordAudio(req, ctx, call, { sessions, metrics: deps.forkMetrics }),
    ),
    StreamAudio: serverStream(deps, { method: 'StreamAudio', schema: s.streamAudioRequest, callIdOf: (r) => callOfPort(r.server_rtp_port) }, (req, ctx, call) =>
      streamAudio(req, ctx, call, { host: hostOf, metrics: deps.forkMetrics }),
    ),
    StartRecording: unary(deps, { method: 'StartRecording', schema: s.startRecordingRequest, callIdOf: (r) => r.call_id || callOfPort(r.server_rtp_port) }, async (req, ctx) => {
      const session = hostOf(req);
      const recording = {
        outputUri: req.output_uri,
        sampleRate: req.sample_rate,
        format: req.format,
        layout: req.channel_layout,
        callId: req.call_id,
        traceId: req.trace_id || ctx.traceId,
        // The call's tenant, as for every other event of the call.
        tenantId: session.tenantId,
      };
      if (req.conference_id) await deps.conferences.startRecording(req.conference_id, recording, req.participant_tracks);
      else await deps.recordings.start(session, recording);
      return { success: true };
    }),
    StopRecording: unary(deps, { method: 'StopRecording', schema: s.stopRecordingRequest, callIdOf: (r) => callOfPort(r.server_rtp_port) }, async (req) => {
      if (!(req.conference_id ? await deps.conferences.stopRecording(req.conference_id) : await deps.recordings.stop(hostOf(req)))) {
        throw new MediaError('failed_precondition', req.conference_id ? `no recording is running on conference ${req.conference_id}` : `no recording is running on the call on port ${req.server_rtp_port}`);
      }
      return { success: true };
    }),
    StreamAudioToCall: bidiStream<s.StreamAudioToCallRequest, s.StreamAudioToCallResponse>(deps, 'StreamAudioToCall', (call, ctx) =>
      streamAudioToCall(call, ctx, { sessions, config }),
    ),
    InjectAudio: bidiStream(deps, 'InjectAudio', (call, ctx) => injectAudio(call as never, ctx, { sessions, config, conferences: deps.conferences })),
    BridgeCalls: unary(deps, { method: 'BridgeCalls', schema: s.bridgeCallsRequest, callIdOf: (r) => callOfPort(r.server_rtp_port_a) }, async (req) => {
      deps.bridges.bridge(sessions.require(req.server_rtp_port_a), sessions.require(req.server_rtp_port_b));
      return { success: true };
    }),
    UnbridgeCalls: unary(deps, { method: 'UnbridgeCalls', schema: s.unbridgeCallsRequest, callIdOf: (r) => callOfPort(r.server_rtp_port) }, async (req) => {
      if (!deps.bridges.unbridge(sessions.require(req.server_rtp_port))) {
        throw new MediaError('failed_precondition', `the call on port ${req.server_rtp_port} is not bridged`);
      }
      return { success: true };
    }),
    CreateRoomToken: unary(deps, { method: 'CreateRoomToken', schema: s.createRoomTokenRequest, callIdOf: (r) => sessions.byCallId(r.room_id)?.callId }, async (req) => {
      const max = config.signaling.max_token_ttl_seconds;
      const ttl = req.ttl_seconds || Math.min(3600, max);
      if (ttl > max) throw new MediaError('invalid_argument', `ttl_seconds must be at most ${max}, got ${ttl}`);
      const exp = Date.now() + ttl * 1000;
      const call = sessions.byCallId(req.room_id) !== undefined;
      const token = deps.tokens.issue({ room: req.room_id, participant: req.participant || 'guest', exp, ...(call ? { call } : {}), ...(req.moderator ? { moderator: true } : {}) });
      return { token, signaling_path: config.signaling.path, expires_at_unix_ms: exp };
    }),
    StartMediaStream: unary(deps, { method: 'StartMediaStream', schema: s.startMediaStreamRequest, callIdOf: callOfRef }, async (req) => {
      const session = sessionOf(req);
      const spec = specOf(req.format, req.redial_attempts);
      const streamId = await deps.mediaStreams.start(session, spec, { url: streamUrl(req.url, req.query), headers: req.headers });
      return { stream_id: streamId };
    }),
    StopMediaStream: unary(deps, { method: 'StopMediaStream', schema: s.stopMediaStreamRequest, callIdOf: callOfRef }, async (req) => {
      if (!deps.mediaStreams.stop(sessionOf(req), req.stream_id)) throw new MediaError('not_found', `no media stream ${req.stream_id} on this call`);
      return { success: true };
    }),
    GetCallQuality: unary(deps, { method: 'GetCallQuality', schema: s.getCallQualityRequest, callIdOf: callOfRef }, async (req) => {
      const session = sessionOf(req);
      return { ...callQuality(session), browsers: (await deps.roomQuality(session.callId)) ?? [] };
    }),
    GetRoomQuality: unary(deps, { method: 'GetRoomQuality', schema: s.getRoomQualityRequest, callIdOf: (r) => sessions.byCallId(r.room_id)?.callId }, async (req) => {
      const browsers = await deps.roomQuality(req.room_id);
      if (!browsers) throw new MediaError('not_found', `no room ${req.room_id} is open`);
      return { room_id: req.room_id, browsers };
    }),
    CreateMediaStreamToken: unary(deps, { method: 'CreateMediaStreamToken', schema: s.createMediaStreamTokenRequest, callIdOf: callOfRef }, async (req) => {
      const session = sessionOf(req);
      const max = config.media_streams.max_token_ttl_seconds;
      const ttl = req.ttl_seconds || Math.min(300, max);
      if (ttl > max) throw new MediaError('invalid_argument', `ttl_seconds must be at most ${max}, got ${ttl}`);
      const { token, exp } = deps.mediaStreams.issueToken(session, specOf(req.format, 0), ttl);
      return { token, path: deps.mediaStreams.path, expires_at_unix_ms: exp };
    }),
  };
}
