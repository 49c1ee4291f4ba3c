import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logging/logger.ts';
import { mergeExpositions } from './metrics-merge.ts';

// The CommonJS module object: an ES import of node:http also loads undici (see src/http/server.ts).
const { createServer, request } = process.getBuiltinModule('node:http');

export type HttpRoute = { socketPath: string } | { host: string; port: number; instance: string };

/** Set on a request relayed from another instance: answered here, never relayed on. */
const FORWARDED = 'x-sentiric-media-forwarded';

export interface HttpFrontShards {
  /** Every shard with its private HTTP socket (null while it is not ready). */
  list(): { index: number; httpSocket: string | null }[];
  /** Where a browser or demo request goes, by its `room` query parameter: a shard, or another instance's HTTP address. */
  routeRoom(room: string | null, relayed: boolean): Promise<HttpRoute | null>;
  /** What the supervisor itself knows of each shard, for /debug/resources. */
  describe(index: number): Record<string, unknown>;
  readiness(): { ready: boolean; checks: Record<string, boolean> };
  /** The front-door processes (none when the supervisor relays itself). */
  frontDoors(): { index: number; metrics(): Promise<string>; describe(): Record<string, unknown> }[];
}

const SHARD_FETCH_MS = 2000;

/**
 * The instance's one HTTP address. Probes, metrics and /debug/resources cover every shard;
 * everything else (socket.io signaling, the demo, /debug/rooms) goes to the shard that owns
 * the request's room, WebSocket upgrades included.
 */
export class HttpFront {
  readonly server: Server;
  readonly #config: Config['http'];
  readonly #shards: HttpFrontShards;
  readonly #registry: Registry;
  readonly #log: Logger;

  constructor(opts: { config: Config['http']; shards: HttpFrontShards; registry: Registry; logger: Logger }) {
    this.#config = opts.config;
    this.#shards = opts.shards;
    this.#registry = opts.registry;
    this.#log = opts.logger.child({ component: 'http' });
    this.server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        this.#log.error({ event: 'HTTP_HANDLER_FAILED', error }, 'HTTP handler failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\n');
      });
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.#config.port, this.#config.listen_address, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://front');
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (get && url.pathname === '/metrics') {
      const own = await this.#registry.metrics();
      const shards = await Promise.all(
        this.#shards.list().map(async (s) => ({ labels: { shard: String(s.index) }, text: s.httpSocket ? await fetchText(s.httpSocket, '/metrics').catch(() => '') : '' })),
      );
      // A front door labels its own samples (front_door="i").
      const doors = await Promise.all(this.#shards.frontDoors().map(async (d) => ({ labels: {}, text: await d.metrics() })));
      res.writeHead(200, { 'content-type': this.#registry.contentType }).end(mergeExpositions([{ labels: {}, text: own }, ...shards, ...doors]));
      return;
    }
    if (get && url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}\n');
      return;
    }
    if (get && url.pathname === '/readyz') {
      const r = this.#shards.readiness();
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify({ status: r.ready ? 'ready' : 'not ready', checks: r.checks })}\n`);
      return;
    }
    if (get && url.pathname === '/debug/resources') {
      const shards = await Promise.all(
        this.#shards.list().map(async (s) => {
          const own = s.httpSocket ? await fetchText(s.httpSocket, '/debug/resources').then((t) => JSON.parse(t) as unknown, () => null) : null;
          return { index: s.index, ...this.#shards.describe(s.index), process: own };
        }),
      );
      const counts: Record<string, number> = {};
      for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify({ supervisor: { resources: counts, memory: process.memoryUsage() }, shards, front_doors: this.#shards.frontDoors().map((d) => ({ index: d.index, ...d.describe() })) })}\n`);
      return;
    }
    const route = await this.#route(req);
    if (!route) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' }).end('no media shard is ready\n');
      return;
    }
    const headers = 'instance' in route ? { ...req.headers, [FORWARDED]: '1' } : req.headers;
    const up = request({ ...route, method: req.method, path: req.url, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('the media shard did not answer\n');
    });
    req.pipe(up);
  }

  #route(req: IncomingMessage): Promise<HttpRoute | null> {
    const url = new URL(req.url ?? '/', 'http://front');
    // A media stream connecting in names its call: it goes where the call is, as the call's room does.
    return this.#shards.routeRoom(url.searchParams.get('room') ?? url.searchParams.get('call'), req.headers[FORWARDED] !== undefined);
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    this.#route(req).then(
      (route) => this.#tunnel(req, socket, head, route),
      () => socket.destroy(),
    );
  }

  #tunnel(req: IncomingMessage, socket: Duplex, head: Buffer, route: HttpRoute | null): void {
    if (!route) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\n');
      return;
    }
    if (socket.destroyed) return;
    const up = 'socketPath' in route ? connect(route.socketPath) : connect(route.port, route.host);
    up.on('error', () => socket.destroy());
    socket.on('close', () => up.destroy());
    up.on('close', () => socket.destroy());
    let head1 = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) head1 += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    if ('instance' in route) head1 += `${FORWARDED}: 1\r\n`;
    up.write(`${head1}\r\n`);
    if (head.length) up.write(head);
    up.pipe(socket);
    socket.pipe(up);
  }
}

function fetchText(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', timeout: SHARD_FETCH_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}
