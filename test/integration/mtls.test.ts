import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { makeTestPki, type TestPki } from '../helpers/certs.ts';
import { startService, type RunningService } from '../helpers/service.ts';
import { TestClient } from '../helpers/grpc-client.ts';

let pki: TestPki;
let svc: RunningService;

before(async () => {
  pki = makeTestPki();
  svc = await startService({
    env: { MEDIA_SERVICE_CERT_PATH: pki.serverCert, MEDIA_SERVICE_KEY_PATH: pki.serverKey, GRPC_TLS_CA_PATH: pki.caCert },
  });
});
after(async () => {
  await svc.stop('SIGKILL');
});

const read = (p: string): Buffer => readFileSync(p);

for (const name of ['media-service', 'sentiric.cloud']) {
  test(`a client with a certificate signed by the platform CA is served (dialled as ${name})`, async () => {
    const creds = grpc.credentials.createSsl(read(pki.caCert), read(pki.clientKey), read(pki.clientCert));
    const client = new TestClient(svc.grpcPort, creds, { 'grpc.ssl_target_name_override': name });
    const r = await client.check();
    client.close();
    assert.equal(r.error, undefined, String(r.error?.details));
    assert.equal(r.response?.status, 'SERVING');
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
});
