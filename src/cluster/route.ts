/** Which shard a request belongs to, read from its first message. */
export type RouteKey =
  | { kind: 'port'; port: number; otherPort?: number }
  /**
   * `near`: a new call meant for this conference (placed on its shard when it has room).
   * `door`: the shard holding the client's connection (set by the supervisor, never read from
   * the request): a new call goes there while it is about as loaded as the best.
   */
  | { kind: 'call'; callId: string; allocate: boolean; near?: string; door?: number }
  | { kind: 'room'; roomId: string }
  /**
   * A conference lives on one instance (the one that created it) and one shard of it, picked
   * from its id; `create`: CreateConference; `request`: AddToConference's, whose call may live elsewhere.
   */
  | { kind: 'conference'; conferenceId: string; create?: boolean; port?: number; callId?: string; request?: Record<string, unknown> }
  | { kind: 'any' };

type Req = Record<string, unknown>;
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

const BY_PORT: Record<string, string> = {
  ReleasePort: 'rtp_port',
  PlayAudio: 'server_rtp_port',
  RecordAudio: 'server_rtp_port',
  StartRecording: 'server_rtp_port',
  StopRecording: 'server_rtp_port',
  StreamAudio: 'server_rtp_port',
  UnbridgeCalls: 'server_rtp_port',
};

/**
 * The routing key of a MediaService request. Ports say their shard by themselves (each shard
 * owns a slice of the range); call ids and rooms are looked up; the rest may go anywhere.
 */
export function routeKeyOf(method: string, req: Req): RouteKey {
  // Recording, streaming or speaking into a conference's mix: its shard.
  const conference = str(req['conference_id']) || str(((req['start'] ?? {}) as Req)['conference_id']);
  if (conference && method !== 'AddToConference' && method !== 'AllocatePort') return { kind: 'conference', conferenceId: conference, ...(method === 'CreateConference' ? { create: true } : {}) };
  const field = BY_PORT[method];
  if (field) return { kind: 'port', port: num(req[field]) };
  switch (method) {
    case 'AllocatePort':
      return { kind: 'call', callId: str(req['call_id']), allocate: true, ...(conference ? { near: conference } : {}) };
    case 'StreamAudioToCall':
      return { kind: 'call', callId: str(req['call_id']), allocate: false };
    case 'InjectAudio': {
      const start = (req['start'] ?? {}) as Req;
      const port = num(start['server_rtp_port']);
      return port ? { kind: 'port', port } : { kind: 'call', callId: str(start['call_id']), allocate: false };
    }
    case 'BridgeCalls':
      return { kind: 'port', port: num(req['server_rtp_port_a']), otherPort: num(req['server_rtp_port_b']) };
    case 'GetCallQuality':
    case 'StartMediaStream':
    case 'StopMediaStream':
    case 'CreateMediaStreamToken': {
      const port = num(req['server_rtp_port']);
      return port ? { kind: 'port', port } : { kind: 'call', callId: str(req['call_id']), allocate: false };
    }
    case 'CreateConference':
    case 'EndConference':
    case 'GetConference':
    case 'RemoveFromConference':
    case 'UpdateConferenceParticipant':
    case 'PlayToConference':
      return { kind: 'conference', conferenceId: str(req['conference_id']) };
    case 'AddToConference': {
      const port = num(req['server_rtp_port']);
      const callId = str(req['call_id']);
      return { kind: 'conference', conferenceId: str(req['conference_id']), ...(port ? { port } : {}), ...(callId ? { callId } : {}), request: req };
    }
    case 'CreateRoomToken':
    case 'GetRoomQuality':
      return { kind: 'room', roomId: str(req['room_id']) };
    default:
      return { kind: 'any' };
  }
}

/** A stable shard for a room that is no call's: browsers of one room meet on one shard. */
export function shardOfRoom(roomId: string, shards: number): number {
  let h = 2166136261;
  for (let i = 0; i < roomId.length; i++) h = Math.imul(h ^ roomId.charCodeAt(i), 16777619);
  return (h >>> 0) % shards;
}
