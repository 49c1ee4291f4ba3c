import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TwilioProtocol } from '../../../src/media-streams/twilio-protocol.ts';
import { RawProtocol } from '../../../src/media-streams/raw-protocol.ts';
import { ProtocolError, closeReason, type StreamDescription } from '../../../src/media-streams/protocol.ts';
import { streamSpecOf, streamUrl } from '../../../src/media-streams/stream-spec.ts';
import { RoomTokens } from '../../../src/signaling/tokens.ts';
import { isStreamGrant } from '../../../src/media-streams/stream-spec.ts';

const desc = (over: Partial<StreamDescription> = {}): StreamDescription => ({
  streamId: 'MZ0123456789abcdef0123456789abcdef',
  callId: 'call-1@pbx',
  port: 10000,
  tenantId: 'acme',
  source: 'stereo',
  encoding: 'pcmu',
  sampleRate: 8000,
  frameMs: 20,
  bidirectional: true,
  customParameters: { a: 'b' },
  ...over,
});
const frame = (rtpTimestamp: number, sequence: number) => ({ data: Buffer.alloc(160, 0xff), rtpTimestamp, sequence, concealed: false, capturedAtMs: 0 });
const json = (s: string | Buffer): Record<string, unknown> => JSON.parse(String(s)) as Record<string, unknown>;

test('twilio: connected, start, then media with one sequence, per-track chunks and ms timestamps from the stream start', () => {
  const p = new TwilioProtocol(desc());
  assert.deepEqual(p.tracks.map((t) => [t.track, t.source]), [['inbound', 'caller'], ['outbound', 'service']]);
  const [connected, start] = p.opening().map(json);
  assert.deepEqual(connected, { event: 'connected', protocol: 'Call', version: '1.0.0' });
  assert.deepEqual(start, {
    event: 'start',
    sequenceNumber: '1',
    start: { accountSid: 'acme', streamSid: 'MZ0123456789abcdef0123456789abcdef', callSid: 'call-1@pbx', tracks: ['inbound', 'outbound'], customParameters: { a: 'b' }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } },
    streamSid: 'MZ0123456789abcdef0123456789abcdef',
  });
  const base = 0xfffffe00;
  const a = json(p.media(p.tracks[0]!, frame(base, 0)));
  const b = json(p.media(p.tracks[1]!, frame(base, 0)));
  const c = json(p.media(p.tracks[0]!, frame((base + 160) >>> 0, 1)));
  assert.deepEqual(a.media, { track: 'inbound', chunk: '1', timestamp: '0', payload: Buffer.alloc(160, 0xff).toString('base64') });
  // Laid out by hand: the same text JSON.stringify gives.
  const q = new TwilioProtocol(desc({ streamId: 'MZ"\\odd' }));
  assert.equal(
    q.media(q.tracks[1]!, frame(8000, 0)),
    JSON.stringify({ event: 'media', sequenceNumber: '1', media: { track: 'outbound', chunk: '1', timestamp: '0', payload: Buffer.alloc(160, 0xff).toString('base64') }, streamSid: 'MZ"\\odd' }),
  );
  assert.equal(b.sequenceNumber, '3');
  assert.deepEqual((b.media as Record<string, unknown>).chunk, '1');
  assert.deepEqual([(c.media as Record<string, unknown>).chunk, (c.media as Record<string, unknown>).timestamp], ['2', '20'], 'the clock wraps without a jump');
  assert.deepEqual(json(p.mark('m1')), { event: 'mark', sequenceNumber: '5', streamSid: 'MZ0123456789abcdef0123456789abcdef', mark: { name: 'm1' } });
  assert.deepEqual(json(p.dtmf('5')).dtmf, { track: 'inbound_track', digit: '5' });
  assert.deepEqual(json(p.stop()), { event: 'stop', sequenceNumber: '7', streamSid: 'MZ0123456789abcdef0123456789abcdef', stop: { accountSid: 'acme', callSid: 'call-1@pbx' } });
  assert.equal(p.notice(), null);
});

test('twilio: the backend’s media, mark and clear are read; malformed ones are refused with a close code', () => {
  const p = new TwilioProtocol(desc());
  const msg = (m: unknown): Buffer => Buffer.from(JSON.stringify(m));
  assert.deepEqual(p.parse(msg({ event: 'media', streamSid: 'x', media: { payload: Buffer.from([1, 2, 3]).toString('base64') } }), false), { kind: 'audio', data: Buffer.from([1, 2, 3]) });
  assert.deepEqual(p.parse(msg({ event: 'mark', streamSid: 'x', mark: { name: 'n' } }), false), { kind: 'mark', name: 'n' });
  assert.deepEqual(p.parse(msg({ event: 'clear', streamSid: 'x' }), false), { kind: 'clear' });
  assert.deepEqual(p.parse(msg({ event: 'something-new' }), false), { kind: 'ignored', what: 'something-new' });
  const refused = (data: Buffer, binary: boolean, code: number): void => {
    assert.throws(() => p.parse(data, binary), (e: unknown) => e instanceof ProtocolError && e.code === code);
  };
  refused(Buffer.from('{'), false, 1007);
  refused(Buffer.from('[1]'), false, 1007);
  refused(msg({ event: 'media', media: { payload: 'a%b=' } }), false, 1007);
  refused(msg({ event: 'media', media: {} }), false, 1007);
  refused(msg({ event: 'mark', mark: { name: 'x'.repeat(300) } }), false, 1007);
  refused(msg({ no: 'event' }), false, 1007);
  refused(Buffer.from([0]), true, 1003);
});

test('raw: one start message, audio as binary, control as JSON', () => {
  const p = new RawProtocol(desc({ encoding: 'pcm', sampleRate: 16000, source: 'stereo' }));
  assert.deepEqual(p.tracks, [{ track: 'audio', source: 'stereo', channels: 2 }]);
  assert.deepEqual(json(p.opening()[0]!).format, { encoding: 'L16', sampleRate: 16000, channels: 2, frameMs: 20 });
  const f = frame(0, 0);
  assert.equal(p.media(p.tracks[0]!, f), f.data);
  assert.deepEqual(json(p.mark('a', true)), { event: 'mark', name: 'a', cleared: true });
  assert.deepEqual(json(p.notice('dropped', 3)), { event: 'dropped', frames: 3 });
  assert.deepEqual(p.parse(Buffer.from([1, 2]), true), { kind: 'audio', data: Buffer.from([1, 2]) });
  assert.deepEqual(p.parse(Buffer.from('{"event":"stop"}'), false), { kind: 'stop' });
  assert.throws(() => p.parse(Buffer.from('nope'), false), ProtocolError);
});

test('stream specs: defaults per protocol, and what each protocol cannot carry', () => {
  const base = { protocol: 'MEDIA_STREAM_PROTOCOL_TWILIO', source: 'AUDIO_SOURCE_CALLER', encoding: 'AUDIO_ENCODING_PCMU', sample_rate: 0, frame_ms: 0, bidirectional: false, custom_parameters: {}, redial_attempts: 0 };
  assert.deepEqual(streamSpecOf(base), { protocol: 'twilio', source: 'caller', encoding: 'pcmu', sampleRate: 8000, frameMs: 20, bidirectional: false, customParameters: {}, redialAttempts: 0 });
  assert.equal(streamSpecOf({ ...base, protocol: 'MEDIA_STREAM_PROTOCOL_RAW', encoding: 'AUDIO_ENCODING_PCM_S16LE' }).sampleRate, 16000);
  assert.throws(() => streamSpecOf({ ...base, encoding: 'AUDIO_ENCODING_OPUS' }), /raw protocol for Opus/);
  assert.throws(() => streamSpecOf({ ...base, source: 'AUDIO_SOURCE_MIXED' }), /no mixed track/);
  assert.throws(() => streamSpecOf({ ...base, sample_rate: 16000 }), /G.711 streams are 8000/);
  assert.throws(() => streamSpecOf({ ...base, frame_ms: 40 }), /frame_ms must be 20/);
  assert.throws(() => streamSpecOf({ ...base, protocol: 'MEDIA_STREAM_PROTOCOL_RAW', encoding: 'AUDIO_ENCODING_PCM_S16LE', sample_rate: 11025 }), /sample_rate/);
  assert.throws(() => streamSpecOf({ ...base, redial_attempts: 100 }), /redial_attempts/);
  assert.equal(streamUrl('wss://h/p?a=1#frag', { b: '2 3' }).href, 'wss://h/p?a=1&b=2+3');
  assert.throws(() => streamUrl('ftp://h/', {}), /ws:\/\/ or wss:\/\//);
  assert.throws(() => streamUrl('not a url', {}), /not a URL/);
});

test('a room token is never a media stream token, though both share the secret', () => {
  const rooms = new RoomTokens('a-secret-of-some-length-0123456789');
  const streams = rooms.sibling('ms1', isStreamGrant);
  const spec = streamSpecOf({ protocol: 'MEDIA_STREAM_PROTOCOL_RAW', source: 'AUDIO_SOURCE_CALLER', encoding: 'AUDIO_ENCODING_PCMU', sample_rate: 0, frame_ms: 0, bidirectional: true, custom_parameters: {}, redial_attempts: 0 });
  const t = streams.issue({ call: 'c1', exp: Date.now() + 60_000, spec });
  assert.equal(streams.verify(t).ok, true);
  assert.equal(rooms.verify(t).ok, false);
  const roomToken = rooms.issue({ room: 'c1', participant: 'p', exp: Date.now() + 60_000 });
  assert.equal(streams.verify(roomToken).ok, false);
  // Same body, signed as the other kind: the version is part of what is signed.
  const forged = `ms1.${roomToken.split('.')[1]}.${roomToken.split('.')[2]}`;
  assert.equal(streams.verify(forged).ok, false);
  assert.equal(streams.verify(streams.issue({ call: 'c1', exp: Date.now() - 1, spec })).ok, false);
});

test('a close reason is cut to 123 bytes of UTF-8, never through a character', () => {
  assert.equal(closeReason('short'), 'short');
  const cut = closeReason('ü'.repeat(100));
  assert.ok(Buffer.byteLength(cut) <= 123);
  assert.equal(cut, 'ü'.repeat(61));
});
