import { status as Status } from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { connect } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { Counter, Gauge, type Registry } from 'prom-client';
import { MediaError } from '../errors/media-error.ts';
import type { Logger } from '../logging/logger.ts';
import { METRIC_PREFIX } from '../metrics/metrics.ts';
import { MEDIA_SERVICE_NAME } from '../grpc/proto.ts';
import { statusName, toGrpcStatus } from '../grpc/status.ts';
import { firstMessage, respondMessage, respondStatus } from './grpc-frames.ts';
import { connectShard } from './public-grpc.ts';
import { routeKeyOf, type RouteKey } from './route.ts';

const HEALTH_SERVICE = 'grpc.health.v1.Health';
/** A first message bigger than this is not waited for: the shard's own limits answer it. */
const MAX_ROUTING_BYTES = 8 * 1024 * 1024;
const HOP_HEADERS = new Set([':method', ':path', ':scheme', ':authority', ':status', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host']);

/** Where a request goes: one of this instance's shards, or the instance that carries the call. */
export type Target =
  | { kind: 'shard'; index: number }
  /**
   * `fallback`: where a new call goes instead when this instance cannot be reached at all (its
   * heartbeat has not run out yet, but nothing answers): nothing reached it, so nothing was allocated.
   */
  | { kind: 'instance'; id: string; address: string; fallback?: () => Target | Promise<Target> }
  /** The front door answers itself (a bridge of two shards' calls): the response message. */
  | { kind: 'answer'; run: () => Promise<Record<string, unknown>> };

/** Set on a request one instance relays to another: it is answered there, never relayed on. */
export const FORWARDED_HEADER = 'x-sentiric-media-forwarded';

/**
 * A shard's own requests, served where they arrive: the stream goes to the gRPC server of this
 * process (its first bytes put back), with nothing relayed between processes.
 */
export interface LocalServe {
  index: number;
  serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void;
}

export interface FrontDoorRouting {
  /** Where a request goes, or a MediaError the client gets as its status. `relayed`: it came from another instance. */
  resolve(key: RouteKey, relayed: boolean): Target | Promise<Target>;
  /** The shard's private gRPC socket while it is ready; null otherwise. */
  socketOf(index: number): string | null;
  /** A connection to another instance's gRPC address. */
  connectInstance(address: string): ClientHttp2Session;
  /** The request finished with this gRPC status (an AllocatePort that failed frees its placement). */
  settled(key: RouteKey, target: Target, code: number): void;
  serving(): boolean;
  /** This instance's id, put in FORWARDED_HEADER. */
  instanceId(): string;
}

const describeTarget = (t: Exclude<Target, { kind: 'answer' }>): string => (t.kind === 'shard' ? `media shard ${t.index}` : `media instance ${t.id}`);

/**
 * The instance's one gRPC address: every request reaches the shard that owns its call. It
 * reads only the first message of a request (to learn the port or call id), then relays the
 * HTTP/2 stream's bytes both ways without decoding them: no protobuf work per frame.
 */
export class FrontDoor {
  readonly #routing: FrontDoorRouting;
  readonly #log: Logger;
  readonly #def: protoLoader.PackageDefinition;
  readonly #sessions = new Map<string, ClientHttp2Session>();
  /** Sessions whose connection was made: a request on one that never was reached nobody. */
  readonly #connected = new WeakSet<ClientHttp2Session>();
  readonly #requests: Counter<'method' | 'outcome'>;
  readonly #inFlight: Gauge;
  readonly #local: LocalServe | undefined;

  constructor(opts: { routing: FrontDoorRouting; logger: Logger; definitions: protoLoader.PackageDefinition; registry: Registry; local?: LocalServe }) {
    this.#routing = opts.routing;
    this.#local = opts.local;
    this.#log = opts.logger.child({ component: 'front-door' });
    this.#def = opts.definitions;
    this.#requests = new Counter({
      name: `${METRIC_PREFIX}front_door_requests_total`,
      help: 'gRPC requests routed by a front door, by method and outcome (served where they arrived, forwarded, or the status the front door answered)',
      labelNames: ['method', 'outcome'] as const,
      registers: [opts.registry],
    });
    this.#inFlight = new Gauge({ name: `${METRIC_PREFIX}front_door_streams`, help: 'gRPC streams being relayed to media shards', registers: [opts.registry] });
  }

  /** Handles one HTTP/2 stream of the public server. */
  handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const path = String(headers[':path'] ?? '');
    const [, service = '', method = ''] = path.split('/');
    stream.on('error', () => {});
    if (service === HEALTH_SERVICE && method === 'Check') {
      this.#collect(stream, 1024, (body) => this.#healthCheck(stream, body));
      return;
    }
    if (service !== MEDIA_SERVICE_NAME && service !== HEALTH_SERVICE) {
      this.#requests.inc({ method: 'unknown', outcome: 'UNIMPLEMENTED' });
      respondStatus(stream, Status.UNIMPLEMENTED, `unknown service ${service.slice(0, 100)}`);
      return;
    }
    const codec = this.#method<unknown, unknown>(service, method);
    if (!codec) {
      this.#requests.inc({ method: 'unknown', outcome: 'UNIMPLEMENTED' });
      respondStatus(stream, Status.UNIMPLEMENTED, `unknown method ${method.slice(0, 100)}`);
      return;
    }
    const buffered: Buffer[] = [];
    let bytes = 0;
    let routed = false;
    const route = (ended: boolean): void => {
      if (routed) return;
      const all = Buffer.concat(buffered, bytes);
      const first = firstMessage(all);
      if (!first && !ended && bytes < MAX_ROUTING_BYTES) return;
      routed = true;
      stream.off('data', onData);
      stream.off('end', onEnd);
      // Held while the target is looked up (another instance's calls are in the registry). The
      // bytes read go back at once, in this tick: a stream holding unread bytes does not end
      // yet, so its own server can still be given it whole (a shard's own calls).
      stream.pause();
      const kept = !ended;
      if (kept) stream.unshift(all);
      let key: RouteKey;
      try {
        key = service === HEALTH_SERVICE ? { kind: 'any' } : routeKeyOf(method, first ? this.#decode(codec, headers, first) : {});
      } catch {
        this.#refuse(stream, method, new MediaError('invalid_argument', `the ${method} request could not be decoded`));
        return;
      }
      const relayed = headers[FORWARDED_HEADER] !== undefined;
      this.#forwardTo(stream, headers, method, key, all, kept, codec, () => this.#routing.resolve(key, relayed));
    };
    const onData = (chunk: Buffer): void => {
      buffered.push(chunk);
      bytes += chunk.length;
      route(false);
    };
    const onEnd = (): void => route(true);
    stream.on('data', onData);
    stream.on('end', onEnd);
  }

  #method<Req, Res>(service: string, method: string): protoLoader.MethodDefinition<Req, Res> | undefined {
    const def = this.#def[service] as protoLoader.ServiceDefinition | undefined;
    return def && Object.hasOwn(def, method) ? (def[method] as unknown as protoLoader.MethodDefinition<Req, Res>) : undefined;
  }

  close(): void {
    for (const s of this.#sessions.values()) s.destroy();
    this.#sessions.clear();
  }

  #decode(codec: protoLoader.MethodDefinition<unknown, unknown>, headers: IncomingHttpHeaders, first: { compressed: boolean; message: Buffer }): Record<string, unknown> {
    let msg = first.message;
    if (first.compressed) {
      if (headers['grpc-encoding'] !== 'gzip') throw new Error('unsupported message encoding');
      msg = gunzipSync(msg, { maxOutputLength: MAX_ROUTING_BYTES });
    }
    return codec.requestDeserialize(msg) as Record<string, unknown>;
  }

  #forwardTo(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    method: string,
    key: RouteKey,
    head: Buffer,
    /** The first bytes were put back into the stream (it had not ended): reading it gives them again. */
    kept: boolean,
    codec: protoLoader.MethodDefinition<unknown, unknown>,
    resolve: () => Target | Promise<Target>,
  ): void {
    let resolved: Target | Promise<Target>;
    try {
      resolved = resolve();
    } catch (err) {
      this.#refuse(stream, method, err);
      return;
    }
    const go = (target: Target): void => {
      if (target.kind !== 'answer') {
        this.#relay(stream, headers, method, key, head, kept, codec, target);
        return;
      }
      this.#requests.inc({ method, outcome: 'answered' });
      target.run().then(
        (response) => respondMessage(stream, codec.responseSerialize(response)),
        (err: unknown) => this.#refuse(stream, method, err),
      );
    };
    if (!(resolved instanceof Promise)) {
      go(resolved);
      return;
    }
    resolved.then(go, (err: unknown) => this.#refuse(stream, method, err));
  }

  #relay(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    method: string,
    key: RouteKey,
    head: Buffer,
    kept: boolean,
    codec: protoLoader.MethodDefinition<unknown, unknown>,
    target: Exclude<Target, { kind: 'answer' }>,
  ): void {
    if (stream.destroyed) {
      // The client went while its target was looked up: a call placed for it is not coming.
      this.#routing.settled(key, target, Status.CANCELLED);
      return;
    }
    if (target.kind === 'shard' && this.#local?.index === target.index && kept) {
      this.#serveHere(this.#local, stream, headers, method, key, target);
      return;
    }
    // A request of one message (unary, server streaming) is whole once its first message is in.
    const whole = !kept || !codec.requestStream;
    let session: ClientHttp2Session;
    if (target.kind === 'shard') {
      const socket = this.#routing.socketOf(target.index);
      if (socket === null) {
        this.#refuse(stream, method, new MediaError('unavailable', `the media shard that owns this call (${target.index}) is restarting; try again`));
        return;
      }
      session = this.#session(`shard:${target.index}`, () => connectShard(() => connect(socket)));
    } else {
      session = this.#session(`instance:${target.address}`, () => this.#routing.connectInstance(target.address));
    }
    const shard = describeTarget(target);
    const out: Record<string, string | string[]> = { ':method': 'POST', ':path': String(headers[':path']) };
    for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_HEADERS.has(k)) out[k] = v as string | string[];
    if (target.kind === 'instance') out[FORWARDED_HEADER] = this.#routing.instanceId();
    let up: http2.ClientHttp2Stream;
    try {
      up = session.request(out, { endStream: false });
    } catch (error) {
      this.#log.warn({ event: 'FRONT_DOOR_FORWARD_FAILED', error, attributes: { 'forward.target': shard } }, 'could not open a stream to the call’s owner');
      this.#refuse(stream, method, new MediaError('unavailable', `the ${shard} is not reachable; try again`));
      return;
    }
    this.#requests.inc({ method, outcome: target.kind === 'shard' ? 'forwarded' : 'forwarded_to_instance' });
    this.#inFlight.inc();
    let trailers: IncomingHttpHeaders | null = null;
    let code = -1;
    up.on('response', (h) => {
      if (stream.destroyed) return;
      const res: Record<string, string | string[]> = { ':status': String(h[':status'] ?? 200) };
      for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_HEADERS.has(k) && k !== 'grpc-status' && k !== 'grpc-message') res[k] = v as string | string[];
      // A trailers-only answer from the shard is relayed as headers, no body, then its status.
      if (h['grpc-status'] !== undefined) trailers = h;
      // Only once a response came: an unreachable instance's stream is retried elsewhere on this one.
      stream.once('wantTrailers', sendTrailers);
      stream.respond(res, { waitForTrailers: true });
    });
    up.on('trailers', (t) => (trailers = t));
    const sendTrailers = (): void => {
      const t = trailers ?? { 'grpc-status': String(Status.UNAVAILABLE), 'grpc-message': `the ${shard} closed the stream; try again` };
      code = Number(t['grpc-status']);
      const send: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(t)) if (v !== undefined && !HOP_HEADERS.has(k)) send[k] = v as string | string[];
      stream.sendTrailers(send);
    };
    up.on('error', () => {});
    up.on('close', () => {
      this.#inFlight.dec();
      if (!stream.headersSent && !stream.destroyed && whole && target.kind === 'instance' && target.fallback && !this.#connected.has(session)) {
        up.unpipe(stream);
        this.#log.warn({ event: 'FRONT_DOOR_INSTANCE_UNREACHABLE', attributes: { 'forward.target': shard } }, 'another media instance could not be reached; the new call goes elsewhere');
        this.#requests.inc({ method, outcome: 'instance_unreachable' });
        this.#forwardTo(stream, headers, method, key, head, kept, codec, target.fallback);
        return;
      }
      if (!stream.headersSent) respondStatus(stream, Status.UNAVAILABLE, `the ${shard} went away; try again`);
      // Cut mid-stream (the shard died): the client still gets a status, UNAVAILABLE, and retries.
      else if (!stream.writableEnded) stream.end();
      // The answer's trailers may still wait for the client to read the body: its status is known already.
      const status = code >= 0 ? code : trailers ? Number((trailers as IncomingHttpHeaders)['grpc-status']) : Status.UNAVAILABLE;
      this.#routing.settled(key, target, Number.isInteger(status) ? status : Status.UNKNOWN);
    });
    stream.on('close', () => {
      // The client cancelled or vanished: so does the shard's side.
      if (!up.closed) up.close(http2.constants.NGHTTP2_CANCEL);
    });
    if (whole) up.end(head);
    // The first bytes are still in the stream: piping it sends them first.
    else stream.pipe(up);
    stream.resume();
    up.pipe(stream);
  }

  #serveHere(local: LocalServe, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, method: string, key: RouteKey, target: Target): void {
    this.#requests.inc({ method, outcome: 'served' });
    stream.once('close', () => {
      // A trailers-only answer carries its status in the headers; none sent: the client left.
      const sent = stream.sentTrailers ?? stream.sentHeaders;
      const code = Number(sent?.['grpc-status'] ?? Status.CANCELLED);
      this.#routing.settled(key, target, Number.isInteger(code) ? code : Status.UNKNOWN);
    });
    local.serve(stream, headers);
  }

  #refuse(stream: ServerHttp2Stream, method: string, err: unknown): void {
    const s = toGrpcStatus(err);
    this.#requests.inc({ method, outcome: statusName(s.code) });
    respondStatus(stream, s.code, s.details);
  }

  #session(name: string, open: () => ClientHttp2Session): ClientHttp2Session {
    const known = this.#sessions.get(name);
    if (known && !known.closed && !known.destroyed) return known;
    const s = open();
    s.once('connect', () => this.#connected.add(s));
    s.on('error', (error) => this.#log.warn({ event: 'FRONT_DOOR_CONNECTION_FAILED', error, attributes: { 'forward.target': name } }, 'a connection the front door relays on failed'));
    s.on('close', () => {
      if (this.#sessions.get(name) === s) this.#sessions.delete(name);
    });
    this.#sessions.set(name, s);
    return s;
  }

  /** Forgets a shard's connection (it restarted on another socket). */
  dropShard(shard: number): void {
    this.#sessions.get(`shard:${shard}`)?.destroy();
    this.#sessions.delete(`shard:${shard}`);
  }

  #collect(stream: ServerHttp2Stream, limit: number, done: (body: Buffer) => void): void {
    const parts: Buffer[] = [];
    let n = 0;
    stream.on('data', (c: Buffer) => {
      n += c.length;
      if (n <= limit) parts.push(c);
    });
    stream.on('end', () => done(Buffer.concat(parts)));
  }

  #healthCheck(stream: ServerHttp2Stream, body: Buffer): void {
    const codec = this.#method<{ service: string }, { status: string }>(HEALTH_SERVICE, 'Check')!;
    const first = firstMessage(body);
    const req = first ? codec.requestDeserialize(first.message) : { service: '' };
    if (req.service !== '' && req.service !== MEDIA_SERVICE_NAME) {
      respondStatus(stream, Status.NOT_FOUND, `unknown service ${req.service.slice(0, 100)}`);
      return;
    }
    respondMessage(stream, codec.responseSerialize({ status: this.#routing.serving() ? 'SERVING' : 'NOT_SERVING' }));
  }
}
