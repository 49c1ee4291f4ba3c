import type * as grpc from '@grpc/grpc-js';
import type { Config } from '../config/schema.ts';
import type { ConferenceInfo, Conferences } from '../conference/conferences.ts';
import type { ParticipantState } from '../conference/conference.ts';
import type { CallSession } from '../sessions/call-session.ts';
import type { SessionRegistry } from '../sessions/session-registry.ts';
import { unary, type RpcDeps } from './middleware.ts';
import * as s from './schemas.ts';

export interface ConferenceServiceDeps extends RpcDeps {
  config: Readonly<Config>;
  sessions: SessionRegistry;
  conferences: Conferences;
}

export const participantMessage = (p: ParticipantState): Record<string, unknown> => ({
  participant_id: p.participantId,
  kind: p.kind,
  call_id: p.callId,
  display_name: p.displayName,
  muted: p.muted,
  deaf: p.deaf,
  gain_db: p.gainDb,
  talking: p.talking,
  level_dbfs: p.levelDbfs,
  joined_at_unix_ms: p.joinedAtUnixMs,
});

const infoMessage = (i: ConferenceInfo) => ({
  conference_id: i.conferenceId,
  max_participants: i.maxParticipants,
  created_at_unix_ms: i.createdAtUnixMs,
  participants: i.participants.map(participantMessage),
});

const toggled = (t: 'TOGGLE_UNCHANGED' | 'TOGGLE_ON' | 'TOGGLE_OFF'): boolean | undefined => (t === 'TOGGLE_UNCHANGED' ? undefined : t === 'TOGGLE_ON');

/** The conference RPCs: each validated at the edge, traced, timed and counted like the rest. */
export function conferenceHandlers(deps: ConferenceServiceDeps): grpc.UntypedServiceImplementation {
  const { conferences, sessions } = deps;
  const sessionOf = (r: { server_rtp_port: number; call_id: string }): CallSession => sessions.requireRef(r);
  return {
    CreateConference: unary(deps, { method: 'CreateConference', schema: s.createConferenceRequest }, async (req, ctx) =>
      infoMessage(
        conferences.create({
          id: req.conference_id,
          traceId: ctx.traceId,
          tenantId: ctx.tenantId ?? deps.config.service.tenant_id,
          maxParticipants: req.max_participants,
          endWhenEmpty: req.end_when_empty,
          mixAll: req.mix_all,
          ...(req.talk_threshold_dbfs !== 0 ? { talkThresholdDbfs: req.talk_threshold_dbfs } : {}),
          ...(req.talk_hold_ms !== 0 ? { talkHoldMs: req.talk_hold_ms } : {}),
        }),
      ),
    ),
    EndConference: unary(deps, { method: 'EndConference', schema: s.conferenceRequest }, async (req) => {
      conferences.end(req.conference_id);
      return { success: true };
    }),
    GetConference: unary(deps, { method: 'GetConference', schema: s.conferenceRequest }, async (req) => infoMessage(conferences.info(req.conference_id))),
    AddToConference: unary(deps, { method: 'AddToConference', schema: s.addToConferenceRequest, callIdOf: (r) => r.call_id || sessions.byPort(r.server_rtp_port)?.callId }, async (req) =>
      participantMessage(conferences.addCall(req.conference_id, sessionOf(req), req.participant_id, { muted: req.muted, deaf: req.deaf, gainDb: req.gain_db })),
    ),
    RemoveFromConference: unary(deps, { method: 'RemoveFromConference', schema: s.removeFromConferenceRequest }, async (req) => {
      conferences.remove(req.conference_id, req.participant_id, req.kick);
      return { success: true };
    }),
    UpdateConferenceParticipant: unary(deps, { method: 'UpdateConferenceParticipant', schema: s.updateConferenceParticipantRequest }, async (req) => {
      const muted = toggled(req.mute);
      const deaf = toggled(req.deaf);
      return participantMessage(
        conferences.control(req.conference_id, req.participant_id, {
          ...(muted !== undefined ? { muted } : {}),
          ...(deaf !== undefined ? { deaf } : {}),
          ...(req.set_gain ? { gainDb: req.gain_db } : {}),
        }),
      );
    }),
    PlayToConference: unary(deps, { method: 'PlayToConference', schema: s.playToConferenceRequest }, async (req, ctx) => ({
      success: true,
      message: await conferences.play(req.conference_id, req.audio_uri, req.participant_id, ctx.traceId),
    })),
  };
}
