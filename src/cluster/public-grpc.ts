import { readFileSync } from 'node:fs';
import http2, { type Http2SecureServer, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logging/logger.ts';

export type PublicGrpcServer = Http2Server | Http2SecureServer;

/** The HTTP/2 server of the instance's one gRPC address (plaintext, or mTLS against the platform CA). */
export function publicGrpcServer(config: Config['grpc'], log: Logger, opts: { quiet?: boolean } = {}): PublicGrpcServer {
  const settings = { initialWindowSize: 1 << 20 };
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
  const settings = { initialWindowSize: 1 << 20 };
  return config.cert_path
    ? http2.connect(`https://${address}`, { ca: readFileSync(config.ca_path), cert: readFileSync(config.cert_path), key: readFileSync(config.key_path), settings })
    : http2.connect(`http://${address}`, { settings });
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
