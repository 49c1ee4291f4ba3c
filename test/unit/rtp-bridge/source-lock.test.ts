import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SourceLock } from '../../../src/rtp-bridge/source-lock.ts';

const phone = { address: '10.0.0.5', port: 4000 };
const attacker = { address: '10.9.9.9', port: 5000 };

describe('SourceLock (strict)', () => {
  const lock = (): SourceLock => new SourceLock({ policy: 'strict', learningMs: 3000 });

  test('the first source is learned and then locked, however long the phone is silent', () => {
    const l = lock();
    assert.equal(l.check(phone, 1, 100, false, 0), 'moved');
    assert.equal(l.check(phone, 1, 101, false, 20), 'accept');
    // 10 s of silence (hold, a long prompt), then a sprayed packet from elsewhere.
    assert.equal(l.check(attacker, 77, 5, false, 10_020), 'reject');
    assert.equal(l.check(attacker, 77, 6, false, 10_040), 'reject');
    assert.equal(l.source?.address, phone.address);
    assert.equal(l.source?.port, phone.port);
  });

  test('a new address with the locked SSRC and the next sequence numbers is the phone behind a rebound NAT', () => {
    const l = lock();
    l.check(phone, 0xabc, 100, false, 0);
    const rebound = { address: '10.0.0.5', port: 4100 };
    assert.equal(l.check(rebound, 0xabc, 103, false, 5000), 'moved');
    assert.equal(l.source?.port, 4100);
    assert.equal(l.check(phone, 0xabc, 102, false, 5020), 'reject', 'the old address with an old sequence number is now foreign');
    assert.equal(l.check(phone, 0x999, 104, false, 5020), 'reject', 'and with another SSRC');
  });

  test('the locked SSRC with a sequence number that does not continue is refused', () => {
    const l = lock();
    l.check(phone, 0xabc, 100, false, 0);
    assert.equal(l.check(attacker, 0xabc, 100, false, 10), 'reject', 'a replayed sequence number');
    assert.equal(l.check(attacker, 0xabc, 99, false, 10), 'reject', 'behind the stream');
    assert.equal(l.check(attacker, 0xabc, 400, false, 10), 'reject', 'far ahead of the stream');
  });

  test('an SRTP-authenticated packet from a new address moves the source', () => {
    const l = lock();
    l.check(phone, 1, 1, true, 0);
    assert.equal(l.check(attacker, 2, 900, true, 100), 'moved');
  });

  test('set_target learns again and prefers the signalled address during the learning window', () => {
    const l = lock();
    l.check(phone, 1, 1, false, 0);
    const moved = { address: '192.0.2.7', port: 7000 };
    l.retarget(moved, 10_000);
    // The old phone's next packet is learned first ...
    assert.equal(l.check(phone, 1, 2, false, 10_010), 'moved');
    // ... but the signalled address replaces it while learning.
    assert.equal(l.check({ address: '192.0.2.7', port: 7002 }, 9, 50, false, 10_500), 'moved');
    assert.equal(l.source?.address, '192.0.2.7');
    assert.equal(l.check(phone, 1, 3, false, 10_600), 'reject');
  });

  test('after the learning window the signalled address proves nothing by itself', () => {
    const l = lock();
    l.retarget({ address: '192.0.2.7', port: 7000 }, 0);
    l.check(phone, 1, 1, false, 10);
    assert.equal(l.check({ address: '192.0.2.7', port: 7000 }, 9, 50, false, 3011), 'reject');
  });
});

describe('SourceLock (latch)', () => {
  test('a new source replaces one silent for a second, never a talking one', () => {
    const l = new SourceLock({ policy: 'latch', learningMs: 0 });
    l.check(phone, 1, 1, false, 0);
    assert.equal(l.check(attacker, 2, 1, false, 500), 'reject');
    assert.equal(l.check(attacker, 2, 1, false, 1500), 'moved');
  });
});
