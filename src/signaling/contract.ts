/**
 * The socket.io signaling contract between the service and browsers. The web demo imports
 * this module too, so both sides are checked against one definition. Types only, plus a few
 * constants: nothing here pulls server code into a browser bundle.
 *
 * Every request is `socket.emit(name, payload, ack)`; the ack is always an `Ack<T>`.
 * Server-to-client messages are plain events.
 */
import type { types as ms } from 'mediasoup';

export const DEFAULT_SIGNALING_PATH = '/signaling';

export type SignalingErrorCode =
  | 'invalid_argument'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'failed_precondition'
  | 'resource_exhausted'
  | 'unavailable'
  | 'internal';

export type Ack<T> = { ok: true; data: T } | { ok: false; error: { code: SignalingErrorCode; message: string } };

export type RtpCapabilities = ms.RtpCapabilities;
export type RtpParameters = ms.RtpParameters;
export type DtlsParameters = ms.DtlsParameters;
export type MediaKind = ms.MediaKind;

/** Who is in the room. Server-side legs (the phone, a test prompt) are peers too. */
export interface PeerInfo {
  peerId: string;
  displayName: string;
  /** conference: the prompts and voices a conference plays to everyone. */
  kind: 'browser' | 'phone' | 'test-leg' | 'conference';
}

export interface ProducerInfo {
  producerId: string;
  peerId: string;
  kind: MediaKind;
  paused: boolean;
}

export interface JoinRequest {
  /** The room asked for; the token must grant exactly this room. */
  roomId: string;
  token: string;
  /** Shown to the others; defaults to the token's participant name. */
  displayName?: string;
}

export interface JoinResponse {
  roomId: string;
  peerId: string;
  /** True when the room is a phone call's (the phone is one of the peers). */
  callBridged: boolean;
  routerRtpCapabilities: RtpCapabilities;
  peers: PeerInfo[];
  producers: ProducerInfo[];
  /** Set when the room is a conference's: who is in it, and whether this token may moderate. */
  conference?: ConferenceView;
  moderator?: boolean;
}

/** A conference participant as browsers see it (phones, browsers, test prompts). */
export interface ConferenceParticipantInfo {
  participantId: string;
  kind: string;
  displayName: string;
  callId: string;
  muted: boolean;
  deaf: boolean;
  talking: boolean;
}

export interface ConferenceView {
  conferenceId: string;
  participants: ConferenceParticipantInfo[];
}

export interface TransportOptions {
  id: string;
  iceParameters: ms.IceParameters;
  iceCandidates: ms.IceCandidate[];
  dtlsParameters: DtlsParameters;
}

export interface ConsumeResponse {
  consumerId: string;
  producerId: string;
  peerId: string;
  kind: MediaKind;
  rtpParameters: RtpParameters;
}

export interface AudioLevel {
  peerId: string;
  producerId: string;
  /** dBov, -127 (silence) to 0. */
  volume: number;
}

type Req<P, R> = (payload: P, ack: (res: Ack<R>) => void) => void;
type Empty = Record<string, never>;

export interface ClientToServerEvents {
  join: Req<JoinRequest, JoinResponse>;
  createTransport: Req<{ direction: 'send' | 'recv' }, TransportOptions>;
  connectTransport: Req<{ transportId: string; dtlsParameters: DtlsParameters }, Empty>;
  produce: Req<{ transportId: string; kind: MediaKind; rtpParameters: RtpParameters }, { producerId: string }>;
  closeProducer: Req<{ producerId: string }, Empty>;
  pauseProducer: Req<{ producerId: string }, Empty>;
  resumeProducer: Req<{ producerId: string }, Empty>;
  /** The consumer is created paused; resume it once the client-side consumer exists. */
  consume: Req<{ transportId: string; producerId: string; rtpCapabilities: RtpCapabilities }, ConsumeResponse>;
  resumeConsumer: Req<{ consumerId: string }, Empty>;
  pauseConsumer: Req<{ consumerId: string }, Empty>;
  /** Plays a prompt into the room as a server-side participant (default: the demo prompt). */
  startTestLeg: Req<{ prompt?: string; loop?: boolean }, { peerId: string }>;
  stopTestLeg: Req<Empty, Empty>;
  /** A moderator's control of a conference participant (the token must allow it). */
  conferenceControl: Req<{ participantId: string; mute?: boolean; deaf?: boolean; kick?: boolean }, Empty>;
  leave: Req<Empty, Empty>;
}

export interface ServerToClientEvents {
  peerJoined: (peer: PeerInfo) => void;
  peerLeft: (p: { peerId: string }) => void;
  newProducer: (p: ProducerInfo) => void;
  producerPaused: (p: { producerId: string; paused: boolean }) => void;
  producerClosed: (p: { producerId: string }) => void;
  consumerClosed: (p: { consumerId: string; producerId: string }) => void;
  /** Loudest producers, a few times a second; producers absent from the list are silent. */
  audioLevels: (levels: AudioLevel[]) => void;
  /** The room ended (the call hung up, the service is stopping); the socket is then closed. */
  roomClosed: (p: { reason: string }) => void;
  /** A conference room's participants changed (joined, left, talking, muted, deaf). */
  conference: (view: ConferenceView) => void;
}

export type SignalingRequest = keyof ClientToServerEvents;
