import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallDirectory } from '../../../src/cluster/call-directory.ts';
import { buildRtp } from '../../../src/rtp-bridge/rtp-packet.ts';
import { senderAfter } from '../../../src/rtp-bridge/rtp-sender.ts';
import { srtpForCall, srtpFromKeys } from '../../../src/rtp-bridge/srtp-negotiation.ts';
import { generateKeyParams } from '../../../src/rtp-bridge/srtp/sdes.ts';
import type { CallSnapshot } from '../../../src/sessions/call-snapshot.ts';

const rtp = (seq: number, ssrc = 0x11223344): Buffer => buildRtp({ marker: false, payloadType: 0, sequenceNumber: seq & 0xffff, timestamp: seq * 160, ssrc }, Buffer.alloc(160, 0x55));

test('a resumed sender goes on: same SSRC, never a reused sequence number, the timestamp moved with the clock', () => {
  const s = { ssrc: 7, seq: 65530, ts: 0xffffff00 };
  const later = senderAfter(s, 1000, 8000);
  assert.equal(later.ssrc, 7);
  assert.equal(later.seq, (65530 + 51) & 0xffff, 'one number per frame time that passed, plus one');
  assert.equal(later.ts, (0xffffff00 + 8000) >>> 0);
  assert.equal(senderAfter(s, -50, 8000).seq, 65531, 'a clock that went back never reuses a number');
});

test('SRTP resumed in another process: the far end accepts what it sends next and refuses replays of what came before', () => {
  const suite = 'AES_CM_128_HMAC_SHA1_80';
  const remote = { crypto_suite: suite, key_params: generateKeyParams(suite) };
  const first = srtpForCall(remote);
  // The phone's side: decrypts what the service sends with the answer's key, encrypts with its own.
  const phone = srtpFromKeys({ crypto_suite: suite, key_params: first.answer.key_params }, remote);
  for (let seq = 65500; seq < 65536; seq++) assert.ok(phone.protection.inbound.unprotect(first.protection.outbound.protect(rtp(seq))));
  const phoneSent = [65530, 65531, 65532].map((seq) => phone.protection.outbound.protect(rtp(seq, 0x99)));
  for (const p of phoneSent) assert.ok(first.protection.inbound.unprotect(p));

  const again = srtpFromKeys(remote, first.answer);
  again.protection.outbound.resume(first.protection.outbound.streams());
  again.protection.inbound.resume(first.protection.inbound.streams());
  // Past the wrap: the rollover counter carried over, so the phone decrypts it.
  assert.ok(phone.protection.inbound.unprotect(again.protection.outbound.protect(rtp(65536 + 40))), 'the phone refused the resumed stream');
  for (const p of phoneSent) assert.equal(again.protection.inbound.unprotect(p), null, 'a replay of a packet from before the restart was accepted');
  assert.ok(again.protection.inbound.unprotect(phone.protection.outbound.protect(rtp(65533, 0x99))));
});

test('directory: a dead shard’s calls wait with their snapshots, then go on or are reported lost', () => {
  const d = new CallDirectory();
  const snap = (callId: string, port: number) => ({ callId, port }) as CallSnapshot;
  const entry = (callId: string, port: number) => ({ callId, port, traceId: 't', tenantId: 'x' });
  d.opened(1, entry('a', 10), snap('a', 10));
  d.opened(1, entry('b', 12), snap('b', 12));
  d.opened(0, entry('c', 2), snap('c', 2));
  d.refresh(1, [{ ...snap('a', 10), echo: true } as CallSnapshot]);
  const waiting = d.suspend(1);
  assert.deepEqual(waiting.map((s) => s.callId).sort(), ['a', 'b']);
  assert.equal((waiting.find((s) => s.callId === 'a') as CallSnapshot).echo, true, 'the latest snapshot is the one handed on');
  assert.equal(d.ownerOf('a'), 1, 'requests for a waiting call still go to its shard (UNAVAILABLE until it is back)');
  d.refresh(1, [snap('a', 99)]);
  assert.equal(d.waiting(1).find((s) => s.callId === 'a')!.port, 10, 'a dead process sends no snapshots that count');
  d.opened(1, entry('a', 10), snap('a', 10)); // carried on
  assert.deepEqual(d.unconfirmed(1).map((e) => e.callId), ['b']);
  assert.equal(d.ownerOf('b'), undefined);
  assert.equal(d.ownerOf('a'), 1);
  assert.equal(d.ownerOf('c'), 0);
});
