import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planShards } from '../../../src/cluster/shard-plan.ts';
import { loadConfig } from '../../../src/config/load.ts';
import { PortAllocator } from '../../../src/sessions/port-allocator.ts';

/** Every port an allocator over [min, max] hands out, until it has none left. */
function drain(min: number, max: number): number[] {
  const a = new PortAllocator({ min, max, quarantineSeconds: 0 });
  const out: number[] = [];
  for (let p = a.take(); p !== null; p = a.take()) out.push(p);
  return out;
}

test('the allocator hands out even ports only, each with its RTP+1 inside the range and never handed out', () => {
  for (const [min, max] of [[10000, 10009], [10000, 10010], [10001, 10010], [10001, 10011]] as const) {
    const ports = drain(min, max);
    assert.ok(ports.length > 0);
    const given = new Set(ports);
    for (const p of ports) {
      assert.equal(p % 2, 0, `${p} of ${min}-${max} is odd`);
      assert.ok(p >= min && p + 1 <= max, `${p}+1 falls outside ${min}-${max}`);
      assert.ok(!given.has(p + 1));
    }
  }
});

test('a shard\'s slice holds the RTP+1 of every port it allocates: no other shard can take it', () => {
  const { config } = loadConfig({ env: { RTP_SERVICE_PORT_MIN: '20000', RTP_SERVICE_PORT_MAX: '20999' }, argv: [], cwd: '/nonexistent' });
  const slices = planShards(config, 3);
  for (const s of slices) {
    for (const p of drain(s.rtpMin, s.rtpMax)) {
      for (const other of slices) {
        if (other.index === s.index) continue;
        assert.ok(p + 1 < other.rtpMin || p + 1 > other.rtpMax, `shard ${s.index}'s RTCP port ${p + 1} is in shard ${other.index}'s slice`);
      }
      assert.ok(p + 1 <= s.rtpMax);
    }
  }
});
