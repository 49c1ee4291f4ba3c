import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { makeTestPki, type TestPki } from '../helpers/certs.ts';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient, eventually } from '../helpers/grpc-client.ts';

const read = (p: string): Buffer => readFileSync(p);

/** One process, and instances whose connections a shard or a front-door process serves (the handshake is its). */
const MODES: { name: string; env: Record<string, string> }[] = [
  { name: 'one process', env: {} },
  { name: 'shards holding the connections', env: { MEDIA_SHARDS: '2', RTP_SERVICE_PORT_MIN: '39400', RTP_SERVICE_PORT_MAX: '39599' } },
  { name: 'shards behind a front-door process', env: { MEDIA_SHARDS: '2', MEDIA_FRONT_DOORS: '1', RTP_SERVICE_PORT_MIN: '39400', RTP_SERVICE_PORT_MAX: '39599' } },
];

for (const mode of MODES) {
  describe(`mTLS: ${mode.name}`, () => {
    let pki: TestPki;
    let svc: RunningService;

    before(async () => {
      pki = makeTestPki();
      svc = await startService({
        env: { MEDIA_SERVICE_CERT_PATH: pki.serverCert, MEDIA_SERVICE_KEY_PATH: pki.serverKey, GRPC_TLS_CA_PATH: pki.caCert, ...mode.env },
      });
      if (mode.env.MEDIA_SHARDS) {
        // A new call goes to the shard holding its connection only while that shard is within a
        // CPU band of the others: start once start-up work is over on every shard.
        await eventually(async () => {
          const d = (await (await fetch(svc.url('/debug/resources'))).json()) as { shards: { ready: boolean; load: { cpu: number } }[] };
          return d.shards.every((s) => s.ready && s.load.cpu < 0.1);
        }, 20_000, 250);
      }
    });
    after(async () => {
      await svc.stop('SIGKILL');
    });

    for (const name of ['media-service', 'sentiric.cloud']) {
      test(`a client with a certificate signed by the platform CA is served (dialled as ${name})`, async () => {
        const creds = grpc.credentials.createSsl(read(pki.caCert), read(pki.clientKey), read(pki.clientCert));
        const client = new TestClient(svc.grpcPort, creds, { 'grpc.ssl_target_name_override': name });
        const r = await client.check();
        const call = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: `mtls-${name}-${process.pid}` });
        const released = call.response ? await client.media_('ReleasePort', { rtp_port: call.response.rtp_port }) : undefined;
        client.close();
        assert.equal(r.error, undefined, String(r.error?.details));
        assert.equal(r.response?.status, 'SERVING');
        assert.equal(call.error, undefined, call.error?.details);
        assert.equal(released?.error, undefined, released?.error?.details);
        if (mode.env.MEDIA_SHARDS && !mode.env.MEDIA_FRONT_DOORS) {
          // The shard that did the handshake served the call itself.
          const text = await (await fetch(svc.url('/metrics'))).text();
          const served = text.split('\n').filter((l) => l.startsWith('sentiric_media_front_door_requests_total{') && l.includes('method="AllocatePort"') && l.includes('outcome="served"') && l.includes('shard="'));
          assert.ok(served.length > 0, 'no shard served an AllocatePort on the connection it held');
        }
      });
    }

    test('a client without a certificate is refused', async () => {
      const creds = grpc.credentials.createSsl(read(pki.caCert));
      const client = new TestClient(svc.grpcPort, creds, { 'grpc.ssl_target_name_override': 'media-service' });
      const r = await client.check();
      client.close();
      assert.equal(r.response, undefined);
      assert.equal(r.error?.code, grpc.status.UNAVAILABLE);
    });

    test('a client whose certificate another CA signed is refused', async () => {
      const creds = grpc.credentials.createSsl(read(pki.caCert), read(pki.rogueClientKey), read(pki.rogueClientCert));
      const client = new TestClient(svc.grpcPort, creds, { 'grpc.ssl_target_name_override': 'media-service' });
      const r = await client.check();
      client.close();
      assert.equal(r.response, undefined);
      assert.equal(r.error?.code, grpc.status.UNAVAILABLE);
    });

    test('a plaintext client is refused', async () => {
      const client = new TestClient(svc.grpcPort);
      const r = await client.check();
      client.close();
      assert.equal(r.response, undefined);
      assert.equal(r.error?.code, grpc.status.UNAVAILABLE);
    });

    test('mTLS start-up logs no plaintext warning', () => {
      assert.ok(!svc.lines.some((l) => l.event === 'GRPC_TLS_DISABLED'));
      const started = svc.lines.find((l) => l.event === 'SERVICE_STARTED');
      assert.equal((started?.attributes as Record<string, unknown>)['grpc.tls'], true);
      if (mode.env.MEDIA_FRONT_DOORS) assert.equal((started?.attributes as Record<string, unknown>)['media.front_doors'], 1);
    });
  });
}
