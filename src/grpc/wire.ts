/**
 * A message already in protobuf wire form: the server writes its bytes as they are. For the
 * one message written 50 times a second per listener (RecordAudio's frame), whose two fields
 * take a few bytes to lay out by hand and a general encoder's object walk to lay out for it.
 */
export class Encoded {
  readonly bytes: Buffer;

  constructor(bytes: Buffer) {
    this.bytes = bytes;
  }
}

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

function writeVarint(b: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    b[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  b[at++] = n;
  return at;
}

/** A string field's bytes (tag, length, UTF-8), laid out once for every message that carries it. */
export function stringField(field: number, value: string): Buffer {
  const utf8 = Buffer.from(value, 'utf8');
  const out = Buffer.allocUnsafe(1 + varintLength(utf8.length) + utf8.length);
  const at = writeVarint(out, writeVarint(out, 0, (field << 3) | 2), utf8.length);
  utf8.copy(out, at);
  return out;
}

/** RecordAudioResponse{audio_data = 1, media_type = 2}, `mediaType` from stringField(2, ...). */
export function recordAudioResponse(audio: Uint8Array, mediaType: Buffer): Encoded {
  const head = 1 + varintLength(audio.length);
  const out = Buffer.allocUnsafe(head + audio.length + mediaType.length);
  writeVarint(out, writeVarint(out, 0, (1 << 3) | 2), audio.length);
  out.set(audio, head);
  mediaType.copy(out, head + audio.length);
  return new Encoded(out);
}
