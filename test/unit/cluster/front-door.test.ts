import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { FrontDoor, type FrontDoorRouting, type Target } from '../../../src/cluster/front-door.ts';
import type { RouteKey } from '../../../src/cluster/route.ts';
import { loadDefinitions } from '../../../src/grpc/proto.ts';
import { TestClient, eventually } from '../../helpers/grpc-client.ts';

test('a client that goes while its new call is being placed leaves no placement waiting: the placement is settled as cancelled', async () => {
  let release: ((t: Target) => void) | undefined;
  const asked: RouteKey[] = [];
  const settled: { key: RouteKey; code: number }[] = [];
  const routing: FrontDoorRouting = {
    resolve: (key) => {
      asked.push(key);
      return new Promise<Target>((r) => (release = r));
    },
    socketOf: () => null,
    connectInstance: () => {
      throw new Error('no other instance here');
    },
    settled: (key, _target, code) => settled.push({ key, code }),
    serving: () => true,
    instanceId: () => 'test',
  };
  const door = new FrontDoor({ routing, logger: pino({ level: 'silent' }), definitions: loadDefinitions(), registry: new Registry() });
  const server = http2.createServer();
  server.on('stream', (stream, headers) => door.handle(stream, headers));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = new TestClient((server.address() as AddressInfo).port);
  try {
    const call = (client.media as unknown as Record<string, (req: unknown, cb: (err: grpc.ServiceError | null) => void) => grpc.ClientUnaryCall>).AllocatePort!(
      { call_id: 'gone@test' },
      () => {},
    );
    await eventually(() => release !== undefined, 5000, 5);
    assert.deepEqual(asked, [{ kind: 'call', callId: 'gone@test', allocate: true }]);
    call.cancel();
    // The cancel has reached the front door's stream before the placement comes back.
    await new Promise((r) => setTimeout(r, 100));
    release!({ kind: 'shard', index: 0 });
    await eventually(() => settled.length > 0, 5000, 5);
    assert.deepEqual(settled, [{ key: { kind: 'call', callId: 'gone@test', allocate: true }, code: grpc.status.CANCELLED }]);
  } finally {
    client.close();
    door.close();
    server.close();
  }
});
