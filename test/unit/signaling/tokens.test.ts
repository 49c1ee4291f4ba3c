import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoomTokens } from '../../../src/signaling/tokens.ts';

const grant = { room: 'room-1', participant: 'ann', exp: Date.now() + 60_000 };

test('a token issued with a secret verifies with the same secret and carries its grant', () => {
  const a = new RoomTokens('s3cret');
  const check = new RoomTokens('s3cret').verify(a.issue(grant));
  assert.deepEqual(check, { ok: true, grant });
});

test('another secret, a changed grant, an expired token and garbage are refused', () => {
  const a = new RoomTokens('s3cret');
  const token = a.issue(grant);
  assert.equal(new RoomTokens('other').verify(token).ok, false);
  const [v, body, sig] = token.split('.');
  const widened = Buffer.from(JSON.stringify({ ...grant, room: 'room-2' })).toString('base64url');
  assert.deepEqual(a.verify(`${v}.${widened}.${sig}`), { ok: false, why: 'the token signature is not valid' });
  assert.equal(a.verify(`${v}.${body}`).ok, false);
  assert.deepEqual(a.verify(a.issue({ ...grant, exp: Date.now() - 1 })), { ok: false, why: 'the token has expired' });
  for (const junk of ['', 'v1..', 'x.y.z', 42, null, 'v1.%%%.abc']) assert.equal(a.verify(junk).ok, false, String(junk));
});

test('without a configured secret, tokens are valid only for this process', () => {
  const a = new RoomTokens('');
  assert.equal(a.ephemeral, true);
  assert.equal(a.verify(a.issue(grant)).ok, true);
  assert.equal(new RoomTokens('').verify(a.issue(grant)).ok, false);
});

test('a demo grant keeps its mark; flags that are not booleans make a grant malformed', () => {
  const a = new RoomTokens('s3cret');
  const demo = a.verify(a.issue({ ...grant, demo: true }));
  assert.ok(demo.ok);
  assert.equal(demo.grant.demo, true);
  // Signed by the right secret but not a grant this service issues.
  for (const odd of [{ ...grant, demo: 'yes' }, { ...grant, call: 1 }]) {
    assert.deepEqual(a.verify(a.issue(odd as never)), { ok: false, why: 'the token is malformed' }, JSON.stringify(odd));
  }
});
