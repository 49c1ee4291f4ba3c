import * as grpc from '@grpc/grpc-js';
import { Encoded } from './wire.ts';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logging/logger.ts';
import { loadProtos } from './proto.ts';
import { warmUpMediaPath } from '../media-path/warm-up.ts';

export interface GrpcServerOptions {
  config: Config['grpc'];
  logger: Logger;
  services: { media: grpc.UntypedServiceImplementation; health: grpc.UntypedServiceImplementation };
  /** A shard behind the instance's front door: plaintext on a private Unix socket instead of the configured address. */
  socketPath?: string;
}

const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

function credentials(config: Config['grpc'], log: Logger): grpc.ServerCredentials {
  if (!config.cert_path) {
    log.warn({ event: 'GRPC_TLS_DISABLED' }, 'gRPC serves plaintext: set MEDIA_SERVICE_CERT_PATH, MEDIA_SERVICE_KEY_PATH and GRPC_TLS_CA_PATH for mTLS');
    return grpc.ServerCredentials.createInsecure();
  }
  // Clients must present a certificate signed by the platform CA.
  return grpc.ServerCredentials.createSsl(
    readFileSync(config.ca_path),
    [{ cert_chain: readFileSync(config.cert_path), private_key: readFileSync(config.key_path) }],
    true,
  );
}

export class GrpcServer {
  readonly #server: grpc.Server;
  readonly #config: Config['grpc'];
  readonly #log: Logger;
  readonly #socketPath: string | undefined;
  #port = 0;

  constructor(opts: GrpcServerOptions) {
    this.#config = opts.config;
    this.#log = opts.logger.child({ component: 'grpc' });
    this.#socketPath = opts.socketPath;
    this.#server = new grpc.Server({
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
    });
    const protos = loadProtos();
    warmUpMediaPath(protos.media.service);
    this.#server.addService(withSharedEncoding(protos.media.service, ['RecordAudio']), opts.services.media);
    this.#server.addService(protos.health.service, opts.services.health);
  }

  /**
   * Serves one HTTP/2 stream of a connection this process holds but grpc-js did not accept
   * (a shard's client connection, handed over by its supervisor): the request is served here,
   * as if it had come in on the server's own listener. grpc-js has no public call for it, so
   * this uses its per-stream handler; null when the installed version has none.
   */
  streamServer(): ((stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void) | null {
    const handler = (this.#server as unknown as { _streamHandler?: unknown })._streamHandler;
    if (typeof handler !== 'function') return null;
    return (stream, headers) => (handler as (this: grpc.Server, interceptors: unknown[], s: ServerHttp2Stream, h: IncomingHttpHeaders) => void).call(this.#server, [], stream, headers);
  }

  get port(): number {
    return this.#port;
  }

  get tls(): boolean {
    return this.#socketPath === undefined && this.#config.cert_path !== '';
  }

  async start(): Promise<number> {
    // The private socket is reached only through the front door, which does the TLS.
    const creds = this.#socketPath === undefined ? credentials(this.#config, this.#log) : grpc.ServerCredentials.createInsecure();
    const host = this.#config.listen_address.includes(':') ? `[${this.#config.listen_address}]` : this.#config.listen_address;
    const address = this.#socketPath === undefined ? `${host}:${this.#config.port}` : `unix:${this.#socketPath}`;
    this.#port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port)));
    });
    return this.#port;
  }

  /** Refuses new calls at once, lets running ones finish for the grace time, then cuts them. */
  async stop(graceMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#log.warn({ event: 'GRPC_FORCED_SHUTDOWN' }, 'in-flight RPCs did not finish in time; cancelling them');
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** A message already in wire form (see wire.ts) is written as it is; any other is encoded. */
function withSharedEncoding(service: grpc.ServiceDefinition, methods: string[]): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = { ...service };
  for (const name of methods) {
    const def = service[name];
    if (!def) continue;
    const encode = def.responseSerialize as (value: unknown) => Buffer;
    out[name] = { ...def, responseSerialize: (value: unknown): Buffer => (value instanceof Encoded ? value.bytes : encode(value)) };
  }
  return out as grpc.ServiceDefinition;
}
