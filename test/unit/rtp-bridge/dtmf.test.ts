import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DtmfDetector } from '../../../src/rtp-bridge/dtmf.ts';

const CODES = '0123456789*#ABCD';
const packet = (digit: string, end: boolean, duration: number): Uint8Array => new Uint8Array([CODES.indexOf(digit), (end ? 0x80 : 0) | 10, duration >> 8, duration & 0xff]);

/** One digit as a sender sends it: updates, then the end packet three times, all on one timestamp. */
function digitPackets(digit: string, ts: number): { ts: number; p: Uint8Array }[] {
  return [packet(digit, false, 400), packet(digit, false, 800), packet(digit, true, 1200), packet(digit, true, 1200), packet(digit, true, 1200)].map((p) => ({ ts, p }));
}

const feed = (d: DtmfDetector, pkts: { ts: number; p: Uint8Array }[]): string[] => pkts.flatMap(({ ts, p }) => d.push(ts, p).map((x) => x.digit));

test('each digit is reported once, with its duration, though its end packet comes three times', () => {
  const d = new DtmfDetector(8000);
  const got = d.push(1000, packet('5', true, 1200));
  assert.deepEqual(got, [{ digit: '5', durationMs: 150 }]);
  assert.deepEqual(feed(d, digitPackets('5', 1000)), []);
  assert.deepEqual(feed(d, [...digitPackets('1', 9000), ...digitPackets('#', 17000)]), ['1', '#']);
});

test('a late end packet of the previous digit does not make the next digit report twice', () => {
  const d = new DtmfDetector(8000);
  const one = digitPackets('1', 1000);
  const two = digitPackets('2', 9000);
  // The third end packet of "1" is reordered behind the first packets of "2".
  const stream = [...one.slice(0, 4), two[0]!, two[1]!, one[4]!, ...two.slice(2)];
  assert.deepEqual(feed(d, stream), ['1', '2']);
});

test('a digit whose end packets were all lost is reported when the next one starts', () => {
  const d = new DtmfDetector(8000);
  assert.deepEqual(feed(d, [...digitPackets('7', 1000).slice(0, 2), ...digitPackets('8', 9000)]), ['7', '8']);
});

test('events past D and short payloads are ignored', () => {
  const d = new DtmfDetector(8000);
  assert.deepEqual(d.push(1, new Uint8Array([16, 0x80, 0, 100])), []);
  assert.deepEqual(d.push(1, new Uint8Array([1, 0x80])), []);
});
