import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDefinitions } from '../../../src/grpc/proto.ts';
import { recordAudioResponse, stringField } from '../../../src/grpc/wire.ts';

const codec = (): { serialize(v: object): Buffer; deserialize(b: Buffer): { audio_data: Buffer; media_type: string } } => {
  const def = loadDefinitions()['sentiric.media.v1.MediaService'] as unknown as Record<string, { responseSerialize(v: object): Buffer; responseDeserialize(b: Buffer): { audio_data: Buffer; media_type: string } }>;
  const m = def['RecordAudio']!;
  return { serialize: (v) => m.responseSerialize(v), deserialize: (b) => m.responseDeserialize(b) };
};

test('a RecordAudio frame laid out by hand is byte for byte what the contract’s encoder writes, at every length class', () => {
  const c = codec();
  for (const len of [0, 1, 127, 128, 320, 640, 16383, 16384, 70000]) {
    const audio = Buffer.from(Array.from({ length: len }, (_, i) => (i * 31 + 7) & 0xff));
    for (const mediaType of ['audio/L16;rate=16000', 'audio/L16;rate=8000', 'x'.repeat(200)]) {
      const mine = recordAudioResponse(audio, stringField(2, mediaType)).bytes;
      assert.deepEqual(mine, c.serialize({ audio_data: audio, media_type: mediaType }), `${len} bytes, ${mediaType.length}-character type`);
      const back = c.deserialize(mine);
      assert.deepEqual([Buffer.from(back.audio_data), back.media_type], [audio, mediaType]);
    }
  }
});
