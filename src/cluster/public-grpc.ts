import { readFileSync } from 'node:fs';
import http2, { type Http2SecureServer, type Http2Server, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logging/logger.ts';

export type PublicGrpcServer = Http2Server | Http2SecureServer;

/**
 * Receive window of every HTTP/2 connection the service holds, per stream and for the
 * connection. SETTINGS sets only the streams'; the connection's stays at 64 KiB until a
 * WINDOW_UPDATE raises it, and one connection carries many calls: 100 calls' 16 kHz audio
 * fills 64 KiB in 20 ms, so the sender would stop whenever the receiver's loop is busy that
 * long, and every call on the connection with it.
 */
export const HTTP2_WINDOW = 1 << 20;
const settings = { initialWindowSize: HTTP2_WINDOW };

/** Raises the connection's receive window to HTTP2_WINDOW (once connected, for a client session). */
export function widenConnectionWindow(session: Http2Session): void {
  const widen = (): void => session.setLocalWindowSize(HTTP2_WINDOW);
  if (session.connecting) session.once('connect', widen);
  else widen();
}

/** The HTTP/2 server of the instance's one gRPC address (plaintext, or mTLS against the platform CA). */
export function publicGrpcServer(config: Config['grpc'], log: Logger, opts: { quiet?: boolean } = {}): PublicGrpcServer {
  const server = plainOrMtls(config, log, opts);
  server.on('session', widenConnectionWindow);
  return server;
}

function plainOrMtls(config: Config['grpc'], log: Logger, opts: { quiet?: boolean }): PublicGrpcServer {
  if (!config.cert_path) {
    if (!opts.quiet) log.warn({ event: 'GRPC_TLS_DISABLED' }, 'gRPC serves plaintext: set MEDIA_SERVICE_CERT_PATH, MEDIA_SERVICE_KEY_PATH and GRPC_TLS_CA_PATH for mTLS');
    return http2.createServer({ settings });
  }
  // Clients must present a certificate signed by the platform CA, as with one process.
  return http2.createSecureServer({
    settings,
    cert: readFileSync(config.cert_path),
    key: readFileSync(config.key_path),
    ca: readFileSync(config.ca_path),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['h2'],
  });
}

/** A connection to another instance's gRPC address, with this instance's client certificate under mTLS. */
export function connectInstance(config: Config['grpc'], address: string): http2.ClientHttp2Session {
  const session = config.cert_path
    ? http2.connect(`https://${address}`, { ca: readFileSync(config.ca_path), cert: readFileSync(config.cert_path), key: readFileSync(config.key_path), settings })
    : http2.connect(`http://${address}`, { settings });
  widenConnectionWindow(session);
  return session;
}

/** A connection to a shard's private gRPC socket (already connected by `createConnection`). */
export function connectShard(createConnection: () => Duplex): http2.ClientHttp2Session {
  const session = http2.connect('http://localhost', { settings, createConnection });
  widenConnectionWindow(session);
  return session;
}

export function listenOn(server: { listen(port: number, host: string, cb: () => void): unknown; address(): AddressInfo | string | null; once(e: 'error', l: (err: Error) => void): unknown; off(e: 'error', l: (err: Error) => void): unknown }, address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
