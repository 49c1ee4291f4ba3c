import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeBase64 } from '../../../src/media-streams/base64.ts';

/** What standard padded base64 is, spelled out as the rule this decoder must keep. */
const STANDARD = /^[A-Za-z0-9+/]*={0,2}$/;
const isStandard = (s: string): boolean => s.length % 4 === 0 && STANDARD.test(s);

test('every encoding of random bytes decodes back to them', () => {
  for (let n = 0; n < 300; n++) {
    const bytes = randomBytes(n);
    assert.deepEqual(decodeBase64(bytes.toString('base64')), bytes);
  }
});

test('a string is taken exactly when it is padded standard base64, and then as Node decodes it', () => {
  const alphabet = 'ABCab01+/=-_ .\n%é';
  let seed = 7;
  const rand = (k: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % k;
  };
  let taken = 0;
  for (let i = 0; i < 20_000; i++) {
    // Mostly valid-looking strings with one or two odd characters dropped in.
    let s = randomBytes(rand(12)).toString('base64');
    for (let k = rand(3); k > 0; k--) {
      const at = rand(s.length + 1);
      s = s.slice(0, at) + alphabet[rand(alphabet.length)] + s.slice(at);
    }
    const got = decodeBase64(s);
    assert.equal(got !== null, isStandard(s), JSON.stringify(s));
    if (got) {
      taken++;
      assert.deepEqual(got, Buffer.from(s, 'base64'));
    }
  }
  assert.ok(taken > 1000 && taken < 19_000, `taken ${taken}`);
});

test('what the alphabet check used to refuse is still refused', () => {
  for (const s of ['AAA-', 'AA_A', 'AA A', 'A===', '====', 'AA=A', 'AAAA=AAA', 'AAAAA', 'AAA\n']) assert.equal(decodeBase64(s), null, s);
  assert.deepEqual(decodeBase64(''), Buffer.alloc(0));
});
