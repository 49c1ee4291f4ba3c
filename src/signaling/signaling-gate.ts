import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Counter } from 'prom-client';
import type { Logger, Logging } from '../logging/logger.ts';
import { METRIC_PREFIX, type Metrics } from '../metrics/metrics.ts';
import type { PromptLoader } from '../playback/prompt-loader.ts';
import type { RoomRegistry } from '../rooms/room-registry.ts';
import type { SignalingServer } from './signaling-server.ts';
import type { RoomTokens } from './tokens.ts';

export interface SignalingGateOptions {
  path: string;
  tokens: RoomTokens;
  rooms: RoomRegistry;
  prompts: PromptLoader;
  logging: Logging;
  metrics: Metrics;
}

/**
 * The signaling path of the HTTP port. socket.io and the signaling server over it load when
 * the first browser arrives, not at start: a service that carries only phone calls never
 * loads them (measured: 4 MB of RSS, 3 s after start and once settled). The request metric
 * is registered at start all the same, so /metrics names it before any browser came.
 */
export class SignalingGate {
  readonly #o: SignalingGateOptions;
  readonly #log: Logger;
  readonly #requests: Counter<'request' | 'code'>;
  /** engine.io's own match: the path, then a slash. */
  readonly #prefix: string;
  #server: Promise<SignalingServer> | undefined;
  #closed = false;

  constructor(opts: SignalingGateOptions) {
    this.#o = opts;
    this.#log = opts.logging.process.child({ component: 'signaling' });
    this.#prefix = `${opts.path.replace(/\/+$/, '')}/`;
    this.#requests = new Counter({
      name: `${METRIC_PREFIX}signaling_requests_total`,
      help: 'Signaling requests by name and outcome (ok or an error code)',
      labelNames: ['request', 'code'] as const,
      registers: [opts.metrics.registry],
    });
  }

  /** An HTTP route: answers what is on the signaling path. */
  readonly route = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (!this.#mine(req)) return false;
    if (this.#closed) {
      res.writeHead(503, { 'content-type': 'text/plain', connection: 'close' }).end('the service is stopping\n');
      return true;
    }
    (await this.#load()).handleRequest(req, res);
    return true;
  };

  /** A WebSocket upgrade on the signaling path: handled (true), or not this gate's (false). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (!this.#mine(req)) return false;
    if (this.#closed) {
      socket.destroy();
      return true;
    }
    this.#load().then(
      (server) => server.handleUpgrade(req, socket, head),
      (error: unknown) => {
        this.#log.error({ event: 'SIGNALING_LOAD_FAILED', error }, 'the signaling server could not be loaded');
        socket.destroy();
      },
    );
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const server = await this.#server?.catch(() => undefined);
    await server?.close();
  }

  #mine(req: IncomingMessage): boolean {
    return (req.url ?? '').startsWith(this.#prefix);
  }

  #load(): Promise<SignalingServer> {
    this.#server ??= import('./signaling-server.ts').then(({ SignalingServer }) => {
      this.#log.info({ event: 'SIGNALING_LOADED' }, 'the first browser arrived: signaling loaded');
      const { path, tokens, rooms, prompts, logging } = this.#o;
      return new SignalingServer({ path, tokens, rooms, prompts, logging, requests: this.#requests });
    });
    return this.#server;
  }
}
