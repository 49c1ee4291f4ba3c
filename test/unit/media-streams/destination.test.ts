import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDestination, compileCidrs, isInternal } from '../../../src/media-streams/destination.ts';

const check = (url: string, addresses: string[], hosts: string[], cidrs: string[] = []) => checkDestination(new URL(url), addresses, { hosts, cidrs }, compileCidrs(cidrs));

test('internal addresses: loopback, private, link-local, CGNAT, unspecified, multicast, IPv6 and IPv4-mapped forms', () => {
  for (const a of ['127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:10.0.0.1', '::ffff:127.0.0.1']) {
    assert.equal(isInternal(a), true, a);
  }
  for (const a of ['8.8.8.8', '172.32.0.1', '192.169.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8']) assert.equal(isInternal(a), false, a);
});

test('a host is dialled when allowed by name, by suffix, or by * for any public address', () => {
  assert.deepEqual(check('wss://stt.example.com/x', ['93.184.216.34'], ['stt.example.com']), { ok: true });
  assert.deepEqual(check('wss://eu.stt.example.com/x', ['93.184.216.34'], ['*.example.com']), { ok: true });
  assert.equal(check('wss://example.com/x', ['93.184.216.34'], ['*.example.com']).ok, false, 'a suffix does not allow the bare domain');
  assert.equal(check('wss://evilexample.com/x', ['93.184.216.34'], ['*.example.com']).ok, false);
  assert.deepEqual(check('wss://anything.net/', ['93.184.216.34'], ['*']), { ok: true });
  const out = check('wss://other.net/', ['93.184.216.34'], ['stt.example.com']);
  assert.equal(out.ok, false);
  assert.match((out as { why: string }).why, /not in the media stream allowlist/);
});

test('an allowed name that resolves inside the network is refused unless a range names the address (DNS rebinding)', () => {
  const r = check('wss://stt.example.com/', ['93.184.216.34', '10.0.0.5'], ['stt.example.com']);
  assert.equal(r.ok, false);
  assert.match((r as { why: string }).why, /resolves to 10\.0\.0\.5, a private/);
  assert.deepEqual(check('wss://stt.example.com/', ['10.0.0.5'], ['stt.example.com'], ['10.0.0.0/24']), { ok: true });
  assert.equal(check('ws://127.0.0.2/', ['127.0.0.2'], ['*'], ['127.0.0.1/32']).ok, false);
  assert.deepEqual(check('ws://127.0.0.1/', ['127.0.0.1'], [], ['127.0.0.1/32']), { ok: true });
  assert.equal(check('ws://[::ffff:169.254.169.254]/', ['::ffff:169.254.169.254'], ['*']).ok, false, 'an IPv4-mapped metadata address');
});

test('only ws and wss, no credentials in the URL, and a name must resolve', () => {
  assert.equal(check('http://stt.example.com/', ['93.184.216.34'], ['*']).ok, false);
  assert.equal(check('wss://u:p@stt.example.com/', ['93.184.216.34'], ['*']).ok, false);
  assert.equal(check('wss://stt.example.com/', [], ['*']).ok, false);
});

test('a range that is not one is a configuration error', () => {
  assert.throws(() => compileCidrs(['10.0.0.0/33']), /not an address range/);
  assert.throws(() => compileCidrs(['example.com/8']), /not an address range/);
  assert.doesNotThrow(() => compileCidrs(['10.0.0.0/8', '::1', 'fd00::/8']));
});
