import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ForkMetrics } from '../audio-fork/fork-metrics.ts';
import type { Config } from '../config/schema.ts';
import { MediaError } from '../errors/media-error.ts';
import { genericEvent } from '../events/types.ts';
import type { EventPublisher } from '../events/types.ts';
import type { Logging } from '../logging/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { CallSession } from '../sessions/call-session.ts';
import type { SessionRegistry } from '../sessions/session-registry.ts';
import type { SignedTokens } from '../util/signed-tokens.ts';
import { compileCidrs } from './destination.ts';
import { checkHeaders, dialBackend } from './dial.ts';
import { MediaStream, type StreamEnd } from './media-stream.ts';
import { MediaStreamMetrics } from './media-stream-metrics.ts';
import type { StreamDescription, WireProtocol } from './protocol.ts';
import { RawProtocol } from './raw-protocol.ts';
import { TwilioProtocol } from './twilio-protocol.ts';
import { isStreamGrant, type StreamGrant, type StreamSpec } from './stream-spec.ts';

/** Frames kept for a backend that stops reading before the oldest are dropped: two seconds at 20 ms. */
const QUEUE_FRAMES = 100;
/** Messages written to a socket whose bytes the kernel has not taken yet, before frames wait in the queue. */
const MAX_UNFLUSHED = 50;

export interface MediaStreamsDeps {
  config: Readonly<Config>;
  sessions: SessionRegistry;
  tokens: SignedTokens<StreamGrant>;
  logging: Logging;
  metrics: Metrics;
  forkMetrics: ForkMetrics;
  events: EventPublisher;
}

/**
 * Every WebSocket media stream of this process: dialled out by StartMediaStream, or connected
 * in by a backend holding a token from CreateMediaStreamToken. Several per call; each ends
 * with its call, and all end when the process stops.
 */
export class MediaStreams {
  readonly #d: MediaStreamsDeps;
  readonly #cidrs: BlockList;
  readonly #metrics: MediaStreamMetrics;
  readonly #byCall = new Map<string, Map<string, MediaStream>>();
  readonly #wss: WebSocketServer;

  constructor(deps: MediaStreamsDeps) {
    this.#d = deps;
    this.#cidrs = compileCidrs(deps.config.media_streams.allowed_cidrs.filter((c) => c.trim() !== ''));
    this.#metrics = new MediaStreamMetrics(deps.metrics);
    this.#wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: deps.config.media_streams.max_message_bytes });
  }

  get path(): string {
    return this.#d.config.media_streams.path;
  }

  /** Dials the backend and starts the stream once its WebSocket is open; the id names it for StopMediaStream. */
  async start(session: CallSession, spec: StreamSpec, target: { url: URL; headers: Record<string, string> }): Promise<string> {
    const c = this.#d.config.media_streams;
    const hosts = c.allowed_hosts.filter((h) => h.trim() !== '');
    if (hosts.length === 0 && c.allowed_cidrs.length === 0) {
      throw new MediaError('failed_precondition', 'media streams cannot dial out: no destination is allowed (set MEDIA_STREAM_ALLOWED_HOSTS or MEDIA_STREAM_ALLOWED_CIDRS)');
    }
    checkHeaders(target.headers);
    this.#roomFor(session);
    const connect = (): Promise<WebSocket> =>
      dialBackend({ url: target.url, headers: target.headers, policy: { hosts, cidrs: c.allowed_cidrs }, cidrs: this.#cidrs, timeoutMs: c.connect_timeout_ms, maxPayload: c.max_message_bytes });
    let ws: WebSocket;
    try {
      ws = await connect();
    } catch (err) {
      this.#metrics.connections.inc({ outcome: err instanceof MediaError && err.code === 'permission_denied' ? 'refused' : 'failed' });
      throw err;
    }
    if (session.closed) {
      ws.close(1000, 'the call ended');
      throw new MediaError('not_found', 'the call ended');
    }
    this.#metrics.connections.inc({ outcome: 'connected' });
    return this.#run(session, spec, ws, connect, 'out', target.url.host).id;
  }

  stop(session: CallSession, streamId: string): boolean {
    const s = this.#byCall.get(session.callId)?.get(streamId);
    if (!s) return false;
    s.stop('stopped');
    return true;
  }

  /** A token a backend presents at `path` to open this stream on the call itself. */
  issueToken(session: CallSession, spec: StreamSpec, ttlSeconds: number): { token: string; exp: number } {
    const exp = Date.now() + ttlSeconds * 1000;
    return { token: this.#d.tokens.issue({ call: session.callId, exp, spec }), exp };
  }

  /** An HTTP upgrade at the media stream path; false for any other path (socket.io takes those). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://media');
    if (url.pathname !== this.path) return false;
    const refuse = (status: number, why: string): void => {
      this.#metrics.connections.inc({ outcome: 'refused' });
      socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 404 ? 'Not Found' : 'Too Many Requests'}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${why}\n`);
    };
    const check = this.#d.tokens.verify(url.searchParams.get('token') ?? req.headers.authorization?.replace(/^Bearer /i, ''));
    if (!check.ok) return (refuse(401, `media stream token refused: ${check.why}`), true);
    const session = this.#d.sessions.byCallId(check.grant.call);
    if (!session) return (refuse(404, 'the call of this token has ended'), true);
    try {
      this.#roomFor(session);
    } catch (err) {
      return (refuse(429, (err as Error).message), true);
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      if (session.closed) {
        ws.close(1000, 'the call ended');
        return;
      }
      this.#metrics.connections.inc({ outcome: 'connected' });
      // A backend that connected in is not dialled again: it reconnects with its token.
      this.#run(session, check.grant.spec, ws, null, 'in', 'inbound');
    });
    return true;
  }

  /** Ends every stream (the process stops): each backend gets its stop message. */
  closeAll(): Promise<unknown> {
    const all = [...this.#byCall.values()].flatMap((m) => [...m.values()]);
    for (const s of all) s.stop('call_ended');
    return Promise.allSettled(all.map((s) => s.done));
  }

  get size(): number {
    let n = 0;
    for (const m of this.#byCall.values()) n += m.size;
    return n;
  }

  #roomFor(session: CallSession): void {
    const n = this.#byCall.get(session.callId)?.size ?? 0;
    const max = this.#d.config.media_streams.max_per_call;
    if (n >= max) throw new MediaError('resource_exhausted', `the call already runs ${n} media streams (MEDIA_STREAM_MAX_PER_CALL is ${max})`);
  }

  #run(session: CallSession, spec: StreamSpec, ws: WebSocket, connect: (() => Promise<WebSocket>) | null, direction: 'in' | 'out', host: string): MediaStream {
    const id = `MZ${randomBytes(16).toString('hex')}`;
    const description: StreamDescription = { ...spec, streamId: id, callId: session.callId, port: session.port, tenantId: session.tenantId };
    const protocol: WireProtocol = spec.protocol === 'twilio' ? new TwilioProtocol(description) : new RawProtocol(description);
    const log = session.log.child({ component: 'media-stream' });
    const stream = new MediaStream(
      {
        description,
        session,
        protocol,
        maxQueueFrames: Math.max(5, Math.round((QUEUE_FRAMES * 20) / spec.frameMs)),
        maxUnflushed: MAX_UNFLUSHED,
        maxBufferMs: this.#d.config.inject.max_buffer_ms,
        connect: connect ?? (() => Promise.reject(new MediaError('unavailable', 'a backend that connected in reconnects by itself'))),
        redialAttempts: connect ? spec.redialAttempts : 0,
        log,
        forkMetrics: this.#d.forkMetrics,
        metrics: this.#metrics,
        events: {
          disconnected: (info) =>
            this.#d.events.publish(
              genericEvent('call.media.stream.disconnected', {
                traceId: session.traceId,
                tenantId: session.tenantId,
                payload: { callId: session.callId, streamId: id, code: info.code, reason: info.reason, redialing: info.redialing },
              }),
            ),
          ended: (why) => this.#ended(session, id, why, direction, log),
        },
      },
      ws,
    );
    let mine = this.#byCall.get(session.callId);
    if (!mine) this.#byCall.set(session.callId, (mine = new Map()));
    mine.set(id, stream);
    this.#metrics.active.inc({ direction });
    log.info(
      { event: 'MEDIA_STREAM_STARTED', attributes: { 'stream.id': id, 'stream.protocol': spec.protocol, 'stream.direction': direction, 'stream.host': host, 'stream.source': spec.source, 'stream.encoding': spec.encoding, 'stream.rate': spec.sampleRate, 'stream.bidirectional': spec.bidirectional } },
      `media stream started (${spec.protocol}, ${direction === 'out' ? `to ${host}` : 'connected in'})`,
    );
    return stream;
  }

  #ended(session: CallSession, id: string, why: StreamEnd, direction: 'in' | 'out', log: CallSession['log']): void {
    const mine = this.#byCall.get(session.callId);
    mine?.delete(id);
    if (mine?.size === 0) this.#byCall.delete(session.callId);
    this.#metrics.active.dec({ direction });
    this.#metrics.ended.inc({ reason: why });
    log.info({ event: 'MEDIA_STREAM_ENDED', attributes: { 'stream.id': id, reason: why } }, `media stream ended (${why})`);
  }
}

export { isStreamGrant };
