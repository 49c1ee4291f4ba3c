import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP forwarder that tests switch off and on to play a broker going away: stop() refuses new
 * connections and cuts the open ones, start() listens again on the same port.
 */
export class TcpProxy {
  readonly #targetHost: string;
  readonly #targetPort: number;
  readonly #sockets = new Set<Socket>();
  #server: Server | null = null;
  #port: number;
  #connections = 0;

  /** port 0: a free port is picked on the first start() and kept for later ones. */
  constructor(opts: { targetHost?: string; targetPort: number; port?: number }) {
    this.#targetHost = opts.targetHost ?? '127.0.0.1';
    this.#targetPort = opts.targetPort;
    this.#port = opts.port ?? 0;
  }

  get port(): number {
    return this.#port;
  }

  /** Client connections accepted so far. */
  get connections(): number {
    return this.#connections;
  }

  /** A free port for the proxy before it ever listens, so a client can be pointed at it while it is down. */
  static async freePort(): Promise<number> {
    const probe = createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(0, '127.0.0.1', resolve);
    });
    const address = probe.address();
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    return address.port;
  }

  async start(): Promise<void> {
    if (this.#server) return;
    const server = createServer((client) => this.#forward(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    this.#port = address.port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #forward(client: Socket): void {
    this.#connections++;
    const upstream = connect(this.#targetPort, this.#targetHost);
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      // Either side failing ends the pair: the point is to look like a cut connection.
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => {
        this.#sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
