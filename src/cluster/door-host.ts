import type { Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Registry } from 'prom-client';
import type { LoadedConfig } from '../config/load.ts';
import { loadDefinitions } from '../grpc/proto.ts';
import type { Logger } from '../logging/logger.ts';
import { FrontDoor, type LocalServe } from './front-door.ts';
import type { DoorMessage, ToFrontDoor } from './front-door-messages.ts';
import { publicGrpcServer } from './public-grpc.ts';
import { RemoteRouting } from './remote-routing.ts';

/**
 * The client connections a child process is handed by its supervisor (a front-door process, or
 * a shard): it does their TLS and routes each request, asking the supervisor where it goes.
 * `local`: a shard serves its own calls' requests itself; the rest are relayed.
 */
export class DoorHost {
  readonly #routing: RemoteRouting;
  readonly #door: FrontDoor;
  readonly #server: ReturnType<typeof publicGrpcServer>;
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Set<Http2Session>();
  readonly #send: (m: DoorMessage) => void;

  constructor(opts: { config: LoadedConfig['config']; logger: Logger; registry: Registry; send: (m: DoorMessage) => void; local?: LocalServe }) {
    this.#send = opts.send;
    this.#routing = new RemoteRouting(opts.send, opts.config.grpc);
    this.#door = new FrontDoor({ routing: this.#routing, logger: opts.logger, definitions: loadDefinitions(), registry: opts.registry, ...(opts.local ? { local: opts.local } : {}) });
    this.#server = publicGrpcServer(opts.config.grpc, opts.logger, { quiet: true });
    this.#server.on('stream', (stream, headers) => this.#door.handle(stream, headers));
    this.#server.on('session', (session: Http2Session) => {
      this.#sessions.add(session);
      session.once('close', () => this.#sessions.delete(session));
    });
  }

  /** Client connections it holds now. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** A supervisor message for the door; false when it is about something else. */
  handle(m: ToFrontDoor, handle: unknown): boolean {
    switch (m.type) {
      case 'connection': {
        const socket = handle as Socket | undefined;
        if (!socket) return true;
        this.#sockets.add(socket);
        socket.once('close', () => {
          this.#sockets.delete(socket);
          this.#send({ type: 'connection-closed' });
        });
        this.#server.emit('connection', socket);
        socket.resume();
        return true;
      }
      case 'state':
        this.#routing.state = m.state;
        return true;
      case 'drop-shard':
        this.#door.dropShard(m.index);
        return true;
      case 'reply':
        this.#routing.reply(m);
        return true;
      default:
        return false;
    }
  }

  /**
   * This process is going (a shard draining): its clients are told to open new connections
   * (GOAWAY), which the supervisor hands elsewhere; the streams they have open go on meanwhile.
   */
  drain(): void {
    for (const s of this.#sessions) if (!s.closed) s.close();
  }

  /** The supervisor is gone: nothing it was asked will be answered, and the connections go. */
  orphaned(): void {
    this.#routing.failAll();
    for (const s of this.#sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.#door.close();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
