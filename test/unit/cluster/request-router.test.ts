import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallDirectory } from '../../../src/cluster/call-directory.ts';
import type { InstanceInfo, InstanceRegistry } from '../../../src/cluster/instance-registry.ts';
import type { Legs } from '../../../src/cluster/legs.ts';
import { RequestRouter } from '../../../src/cluster/request-router.ts';
import type { ShardProcess } from '../../../src/cluster/shard-process.ts';
import { planShards } from '../../../src/cluster/shard-plan.ts';
import { loadConfig } from '../../../src/config/load.ts';

/** A registry that learns of the other instance only when it is read again, as one that joined since the last heartbeat. */
function lateRegistry(other: InstanceInfo): { registry: InstanceRegistry; syncs: () => number } {
  let known = false;
  let syncs = 0;
  const registry = {
    instanceForPort: (port: number) => (known && port >= other.rtpMin && port <= other.rtpMax ? other : null),
    sync: async () => {
      syncs++;
      known = true;
    },
  } as unknown as InstanceRegistry;
  return { registry, syncs: () => syncs };
}

function router(registry: InstanceRegistry): RequestRouter {
  const { config } = loadConfig({ env: { RTP_SERVICE_PORT_MIN: '10000', RTP_SERVICE_PORT_MAX: '10199' }, argv: [], cwd: '/nonexistent' });
  const shards = [{ index: 0, ready: true, load: { cpu: 0, loopLagMs: 0, sessions: 0 } }] as unknown as ShardProcess[];
  return new RequestRouter({ config, slices: planShards(config, 1), shards, directory: new CallDirectory(), legs: {} as Legs, instances: () => registry, draining: () => false });
}

test('a port of an instance that joined since the last heartbeat: the registry is read again and the request goes there', async () => {
  const other: InstanceInfo = { id: 'instance-new', grpc: '127.0.0.1:50051', http: '127.0.0.1:8080', rtpMin: 20000, rtpMax: 20199 } as InstanceInfo;
  const { registry, syncs } = lateRegistry(other);
  const r = router(registry);
  assert.deepEqual(await r.resolve({ kind: 'port', port: 20010 }, false), { kind: 'instance', id: 'instance-new', address: '127.0.0.1:50051' });
  assert.equal(syncs(), 1);
  // This instance's own port, or a request another instance relayed: no read.
  assert.deepEqual(await r.resolve({ kind: 'port', port: 10010 }, false), { kind: 'shard', index: 0 });
  assert.deepEqual(await r.resolve({ kind: 'port', port: 30000 }, true), { kind: 'shard', index: 0 });
  // Ports nobody hands out are read for at most once a second, whoever sends them.
  await r.resolve({ kind: 'port', port: 30000 }, false);
  await r.resolve({ kind: 'port', port: 30002 }, false);
  assert.equal(syncs(), 1);
});
