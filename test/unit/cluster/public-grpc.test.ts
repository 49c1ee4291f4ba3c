import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2, { type Http2Session } from 'node:http2';
import { connect, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { connectInstance, connectShard, HTTP2_WINDOW, publicGrpcServer } from '../../../src/cluster/public-grpc.ts';
import type { Config } from '../../../src/config/schema.ts';

const plain: Config['grpc'] = { listen_address: '127.0.0.1', port: 0, cert_path: '', key_path: '', ca_path: '', shutdown_grace_seconds: 1 };
const HTTP2_DEFAULT_WINDOW = 65_535;

/** What the peer of `s` may send on the connection before it hears from `s` again. */
async function windowOffered(peer: Http2Session): Promise<number> {
  for (let k = 0; k < 100; k++) {
    // A round trip: the WINDOW_UPDATE, if any, was sent before the PING's answer.
    await new Promise<void>((resolve, reject) => peer.ping((err) => (err ? reject(err) : resolve())));
    if ((peer.state.remoteWindowSize ?? 0) > HTTP2_DEFAULT_WINDOW) break;
  }
  return peer.state.remoteWindowSize ?? 0;
}

async function plainServer(): Promise<{ port: number; sessions: Http2Session[]; close(): void }> {
  const server = http2.createServer();
  const sessions: Http2Session[] = [];
  server.on('session', (s) => sessions.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, sessions, close: () => server.close() };
}

test('the public gRPC server lets a client have 1 MiB in flight on its connection, not 64 KiB', async () => {
  const server = publicGrpcServer(plain, pino({ level: 'silent' }), { quiet: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    await once(client, 'remoteSettings');
    assert.equal(await windowOffered(client), HTTP2_WINDOW);
    assert.equal(client.remoteSettings.initialWindowSize, HTTP2_WINDOW, 'each stream’s window');
  } finally {
    client.destroy();
    server.close();
  }
});

for (const [name, open] of [
  ['a link to a shard', (port: number) => connectShard(() => connect(port, '127.0.0.1'))],
  ['a link to another instance', (port: number) => connectInstance(plain, `127.0.0.1:${port}`)],
] as const) {
  test(`${name} offers the same window to the side that sends (the relayed calls' audio)`, async () => {
    const far = await plainServer();
    const link = open(far.port);
    try {
      await once(link, 'remoteSettings');
      assert.equal(far.sessions.length, 1);
      assert.equal(await windowOffered(far.sessions[0]!), HTTP2_WINDOW);
    } finally {
      link.destroy();
      far.close();
    }
  });
}
