import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webrtcQuality, type StreamStat } from '../../../src/quality/webrtc-quality.ts';
import { CODEC_IMPAIRMENT, mosFromR, rFactor } from '../../../src/quality/e-model.ts';

const stat = (o: Partial<StreamStat>): StreamStat => ({ type: 'inbound-rtp', mimeType: 'audio/opus', packetCount: 0, byteCount: 0, packetsLost: 0, fractionLost: 0, ...o });

test('a browser’s figures: what it sent (loss, jitter in its clock), what it got, its round trip, a MOS', () => {
  const q = webrtcQuality(
    { id: 'p1', displayName: 'ann' },
    [stat({ packetCount: 950, packetsLost: 50, jitter: 480 })],
    [stat({ type: 'outbound-rtp', mimeType: 'audio/PCMU', packetCount: 400, byteCount: 68800, packetsLost: 4, fractionLost: 64, roundTripTime: 30 }), stat({ type: 'inbound-rtp', packetCount: 999 })],
  );
  assert.deepEqual(q.inbound, { packets: 950, lost: 50, loss_ratio: 0.05, jitter_ms: 10 });
  assert.deepEqual(q.outbound, { packets: 400, bytes: 68800, fraction_lost: 0.25, lost: 4 });
  assert.equal(q.codec, 'OPUS');
  assert.equal(q.has_rtt, true);
  assert.equal(q.rtt_ms, 30);
  const r = rFactor(CODEC_IMPAIRMENT.OPUS, 0.05, 60 + 10 + 15);
  assert.equal(q.r_factor, +r.toFixed(1));
  assert.equal(q.mos, +mosFromR(r).toFixed(2));
});

test('no reports yet: no round trip, no loss, a clean MOS', () => {
  const q = webrtcQuality({ id: 'p2', displayName: 'bob' }, [stat({ packetCount: 10 })], [stat({ type: 'outbound-rtp', packetCount: 5 })]);
  assert.equal(q.has_rtt, false);
  assert.equal(q.rtt_ms, 0);
  assert.equal(q.inbound.loss_ratio, 0);
  assert.ok(q.mos > 4.3, `MOS ${q.mos}`);
  const none = webrtcQuality({ id: 'p3', displayName: 'mute' }, [], []);
  assert.deepEqual([none.inbound.packets, none.outbound.packets, none.codec], [0, 0, '']);
});
