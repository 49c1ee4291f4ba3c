import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Counter } from 'prom-client';
import { Server, type Socket } from 'socket.io';
import type { ZodType } from 'zod';
import { MediaError, invalidArgument } from '../errors/media-error.ts';
import type { Logger, Logging } from '../logging/logger.ts';
import { parseAudioUri } from '../playback/audio-uri.ts';
import type { PromptLoader } from '../playback/prompt-loader.ts';
import { Peer } from '../rooms/peer.ts';
import type { Room } from '../rooms/room.ts';
import type { RoomRegistry } from '../rooms/room-registry.ts';
import type { Ack, ClientToServerEvents, JoinResponse, ServerToClientEvents, SignalingRequest } from './contract.ts';
import { toAckError } from './errors.ts';
import * as s from './schemas.ts';
import type { RoomTokens } from './tokens.ts';

type IoServer = Server<ClientToServerEvents, ServerToClientEvents>;
type IoSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

export const DEFAULT_TEST_PROMPT = 'file://demo/welcome.wav';
const MAX_PAYLOAD_BYTES = 64 * 1024;

export interface SignalingOptions {
  path: string;
  tokens: RoomTokens;
  rooms: RoomRegistry;
  prompts: PromptLoader;
  logging: Logging;
  requests: Counter<'request' | 'code'>;
}

interface Joined {
  room: Room;
  peer: Peer;
  /** Ends the connection when the room ends; removed when the peer leaves first. */
  onClose: () => void;
  /** The token may moderate the room's conference. */
  moderator: boolean;
}

const demoRefused = (): MediaError => new MediaError('permission_denied', "a demo token does not open a call's room; ask the platform for a token");

/**
 * socket.io signaling for browsers on the HTTP port. Each request is validated, answered
 * by exactly one ack ({ ok, data } or { ok: false, error: { code, message } }), and
 * counted; a socket that goes away leaves nothing behind in its room. The HTTP port hands
 * it what arrives on its path (SignalingGate), so it is built only when a browser comes.
 */
export class SignalingServer {
  readonly #io: IoServer;
  readonly #o: SignalingOptions;
  readonly #requests: Counter<'request' | 'code'>;

  constructor(opts: SignalingOptions) {
    this.#o = opts;
    this.#requests = opts.requests;
    // Attached to a server of its own that never listens: requests come in through
    // handleRequest and handleUpgrade, and the service's HTTP server keeps its own listeners.
    this.#io = new Server<ClientToServerEvents, ServerToClientEvents>(process.getBuiltinModule('node:http').createServer(), {
      path: opts.path,
      serveClient: false,
      maxHttpBufferSize: MAX_PAYLOAD_BYTES,
      connectTimeout: 10_000,
    });
    this.#io.on('connection', (socket) => this.#onConnection(socket));
  }

  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    this.#io.engine.handleRequest(req, res);
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#io.engine.handleUpgrade(req, socket, head);
  }

  async close(): Promise<void> {
    this.#io.disconnectSockets(true);
    await new Promise<void>((resolve) => this.#io.close(() => resolve()));
  }

  #onConnection(socket: IoSocket): void {
    const header = socket.handshake.headers['x-trace-id'];
    const traceId = typeof header === 'string' && /^[\w-]{1,128}$/.test(header) ? header : randomUUID();
    let log: Logger = this.#o.logging.forContext({ trace_id: traceId, call_id: null }).child({ socket_id: socket.id });
    let joined: Joined | null = null;
    let joining = false;
    const requireJoined = (): Joined => {
      if (!joined || joined.room.closed) throw new MediaError('failed_precondition', 'join a room first');
      return joined;
    };

    const on = <K extends SignalingRequest>(name: K, schema: ZodType, fn: (payload: never) => Promise<unknown>): void => {
      // socket.io puts the ack last, however many arguments the client sent.
      socket.on(name as never, ((...args: unknown[]) => {
        const ack = args[args.length - 1];
        if (typeof ack !== 'function') {
          this.#requests.inc({ request: name, code: 'no_ack' });
          log.warn({ event: 'SIGNALING_NO_ACK', attributes: { 'signaling.request': name } }, 'a request without an ack callback was ignored');
          return;
        }
        const reply = ack as (res: Ack<unknown>) => void;
        const payload = args.length > 1 ? args[0] : undefined;
        void (async () => {
          try {
            if (args.length > 2) throw invalidArgument(`${name} takes one payload, got ${args.length - 1}`);
            const data = await fn(schema.parse(payload ?? {}) as never);
            this.#requests.inc({ request: name, code: 'ok' });
            reply({ ok: true, data: data ?? {} });
          } catch (err) {
            const e = toAckError(err);
            this.#requests.inc({ request: name, code: e.code });
            if (e.expected) log.info({ event: 'SIGNALING_REQUEST_REFUSED', attributes: { 'signaling.request': name, 'error.code': e.code, 'error.message': e.message } }, `${name} refused: ${e.message}`);
            else log.error({ event: 'SIGNALING_REQUEST_FAILED', error: err, attributes: { 'signaling.request': name } }, `${name} failed`);
            reply({ ok: false, error: { code: e.code, message: e.message } });
          }
        })();
      }) as never);
    };

    // Requests this server does not know still get an answer when the client waits for one.
    // socket.io lets a client name an event with a number, too.
    socket.onAny((event: unknown, ...args: unknown[]) => {
      const name = String(event);
      if (typeof event === 'string' && KNOWN.has(name)) return;
      this.#requests.inc({ request: 'unknown', code: 'invalid_argument' });
      const ack = args[args.length - 1];
      if (typeof ack === 'function') (ack as (r: Ack<never>) => void)({ ok: false, error: { code: 'invalid_argument', message: `unknown request "${name.slice(0, 64)}"` } });
    });
    // A client can send an event named "error": an emitter without an error listener throws
    // it, which would end the process. onAny above has answered it already.
    socket.on('error' as never, ((err: unknown) => {
      if (err instanceof Error) log.warn({ event: 'SIGNALING_SOCKET_ERROR', error: err }, 'signaling socket error');
    }) as never);

    on('join', s.joinRequest, async (req: { roomId: string; token: string; displayName?: string }): Promise<JoinResponse> => {
      // Two joins in flight on one connection would make two peers, one of them never left.
      if (joined || joining) throw new MediaError('failed_precondition', 'this connection has already joined a room');
      const check = this.#o.tokens.verify(req.token);
      if (!check.ok) throw new MediaError('unauthenticated', check.why);
      const { grant } = check;
      if (grant.room !== req.roomId) throw new MediaError('permission_denied', `the token is for another room, not ${req.roomId}`);
      if (grant.demo && this.#o.rooms.isCallRoom(req.roomId)) throw demoRefused();
      joining = true;
      let room: Room;
      try {
        room = await this.#o.rooms.open(req.roomId, grant.call && !grant.demo ? req.roomId : undefined);
      } finally {
        joining = false;
      }
      // Held from open() until the finally below: a room nobody got into closes there.
      try {
        if (socket.disconnected) throw new MediaError('failed_precondition', 'the connection closed while joining');
        if (grant.demo && (room.callBridged || this.#o.rooms.isCallRoom(room.id))) throw demoRefused();
        const peerLog = room.log.child({ socket_id: socket.id });
        const peer = new Peer({
          id: randomUUID(),
          displayName: req.displayName ?? grant.participant,
          log: peerLog,
          notify: (event, ...args) => {
            socket.emit(event, ...args);
          },
          disconnect: () => void setImmediate(() => socket.disconnect(true)),
        });
        room.join(peer);
        const onClose = (): void => void setImmediate(() => socket.disconnect(true));
        room.once('close', onClose);
        joined = { room, peer, onClose, moderator: grant.moderator === true };
        log = peerLog;
        log.info({ event: 'PEER_JOINED', attributes: { 'room.id': room.id, 'peer.id': peer.id, 'token.demo': grant.demo === true } }, `${peer.displayName} joined`);
        return {
          roomId: room.id,
          peerId: peer.id,
          callBridged: room.callBridged,
          routerRtpCapabilities: room.router.rtpCapabilities,
          peers: room.peers().filter((p) => p.peerId !== peer.id),
          producers: room.producers(peer.id),
          ...(room.conference ? { conference: room.conference.view(), moderator: grant.moderator === true } : {}),
        };
      } finally {
        this.#o.rooms.release(room);
      }
    });
    on('createTransport', s.createTransportRequest, async (req: { direction: 'send' | 'recv' }) => {
      const j = requireJoined();
      return j.room.createTransport(j.peer, req.direction);
    });
    on('connectTransport', s.connectTransportRequest, async (req: { transportId: string; dtlsParameters: never }) => {
      const j = requireJoined();
      await j.room.connectTransport(j.peer, req.transportId, req.dtlsParameters);
    });
    on('produce', s.produceRequest, async (req: { transportId: string; kind: 'audio' | 'video'; rtpParameters: never }) => {
      const j = requireJoined();
      return { producerId: await j.room.produce(j.peer, req.transportId, req.kind, req.rtpParameters) };
    });
    on('closeProducer', s.producerRequest, async (req: { producerId: string }) => {
      const j = requireJoined();
      j.room.closeProducer(j.peer, req.producerId);
    });
    on('pauseProducer', s.producerRequest, async (req: { producerId: string }) => {
      const j = requireJoined();
      await j.room.setProducerPaused(j.peer, req.producerId, true);
    });
    on('resumeProducer', s.producerRequest, async (req: { producerId: string }) => {
      const j = requireJoined();
      await j.room.setProducerPaused(j.peer, req.producerId, false);
    });
    on('consume', s.consumeRequest, async (req: { transportId: string; producerId: string; rtpCapabilities: never }) => {
      const j = requireJoined();
      return j.room.consume(j.peer, req.transportId, req.producerId, req.rtpCapabilities);
    });
    on('resumeConsumer', s.consumerRequest, async (req: { consumerId: string }) => {
      const j = requireJoined();
      await j.room.setConsumerPaused(j.peer, req.consumerId, false);
    });
    on('pauseConsumer', s.consumerRequest, async (req: { consumerId: string }) => {
      const j = requireJoined();
      await j.room.setConsumerPaused(j.peer, req.consumerId, true);
    });
    on('startTestLeg', s.startTestLegRequest, async (req: { prompt?: string; loop?: boolean }) => {
      const j = requireJoined();
      const uri = parseAudioUri(req.prompt ?? DEFAULT_TEST_PROMPT, { maxDataBytes: 0 });
      if (uri.kind !== 'file') throw invalidArgument('a test leg plays a file:// prompt from the assets directory');
      const pcm = await this.#o.prompts.load(uri);
      return { peerId: await j.room.startTestLeg(j.peer, pcm, req.loop ?? true) };
    });
    on('stopTestLeg', s.emptyRequest, async () => {
      const j = requireJoined();
      j.room.stopTestLeg(j.peer);
    });
    on('conferenceControl', s.conferenceControlRequest, async (req: { participantId: string; mute?: boolean; deaf?: boolean; kick?: boolean }) => {
      const j = requireJoined();
      const conf = j.room.conference;
      if (!conf) throw new MediaError('failed_precondition', 'this room is no conference');
      if (!j.moderator) throw new MediaError('permission_denied', 'this token may not moderate the conference; ask the platform for a moderator token');
      conf.control(req.participantId, req);
    });
    on('leave', s.emptyRequest, async () => {
      const j = requireJoined();
      j.room.off('close', j.onClose);
      j.room.leave(j.peer);
      joined = null;
      setImmediate(() => socket.disconnect(true));
    });

    socket.on('disconnect', (reason) => {
      if (!joined) return;
      const { room, peer, onClose } = joined;
      joined = null;
      room.off('close', onClose);
      room.leave(peer);
      log.info({ event: 'PEER_LEFT', attributes: { 'peer.id': peer.id, reason } }, `${peer.displayName} left (${reason})`);
    });
  }
}

const KNOWN = new Set<string>(['join', 'createTransport', 'connectTransport', 'produce', 'closeProducer', 'pauseProducer', 'resumeProducer', 'consume', 'resumeConsumer', 'pauseConsumer', 'startTestLeg', 'stopTestLeg', 'conferenceControl', 'leave'] satisfies SignalingRequest[]);
