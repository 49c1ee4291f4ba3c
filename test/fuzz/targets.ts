import { MediaError } from '../../src/errors/media-error.ts';
import { callIdProblem } from '../../src/grpc/schemas.ts';
import { InboundTimeline } from '../../src/media-path/inbound-timeline.ts';
import { parseAudioUri, parseTargetAddr } from '../../src/playback/audio-uri.ts';
import { parseRecordingUri } from '../../src/recording/target.ts';
import { DtmfDetector } from '../../src/rtp-bridge/dtmf.ts';
import { buildRtp, isRtcpPacket, parseRtp } from '../../src/rtp-bridge/rtp-packet.ts';
import { SourceLock } from '../../src/rtp-bridge/source-lock.ts';
import { SrtpSession } from '../../src/rtp-bridge/srtp/context.ts';
import { parseCryptoAttribute, parseKeyParams } from '../../src/rtp-bridge/srtp/sdes.ts';
import { parseWav } from '../../src/codecs/wav.ts';
import { RoomTokens } from '../../src/signaling/tokens.ts';

/** A small, seeded generator: a failing input is found again from its seed. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    // Scrambled so that neighbouring seeds start far apart (xorshift's first outputs follow a small seed).
    let x = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    this.#s = (x ^ (x >>> 16)) >>> 0 || 1;
  }
  next(): number {
    // xorshift32
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s / 0x1_0000_0000;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

/** Flips, truncates, extends or splices a valid input: where parsers break. */
export function mutate(rng: Rng, seed: Buffer): Buffer {
  const b = Buffer.from(seed);
  switch (rng.int(5)) {
    case 0:
      for (let k = 0, n = 1 + rng.int(4); k < n && b.length > 0; k++) b[rng.int(b.length)] = rng.int(256);
      return b;
    case 1:
      return b.subarray(0, rng.int(b.length + 1));
    case 2:
      return Buffer.concat([b, rng.bytes(rng.int(64))]);
    case 3:
      return rng.bytes(rng.int(1500));
    default: {
      const at = rng.int(b.length + 1);
      return Buffer.concat([b.subarray(0, at), rng.bytes(rng.int(8)), b.subarray(at)]);
    }
  }
}

/** Only domain errors with a message for clients may come out of an edge parser. */
function expectedOrNothing(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof MediaError) || err.message.length === 0) throw err;
  }
}

export interface FuzzTarget {
  name: string;
  /** One input; throws when an invariant breaks. */
  run(rng: Rng): void;
}

const rtpSeed = buildRtp({ marker: true, payloadType: 0, sequenceNumber: 65535, timestamp: 0xfffffff0, ssrc: 42 }, new Uint8Array(160).fill(0x7f));
const key = Buffer.alloc(16, 7);
const salt = Buffer.alloc(14, 9);
const sender = new SrtpSession('AES_CM_128_HMAC_SHA1_80', key, salt);
const receiver = new SrtpSession('AES_CM_128_HMAC_SHA1_80', key, salt);
const srtpSeed = sender.protect(Buffer.from(rtpSeed));
const tokens = new RoomTokens('fuzz-secret');
const tokenSeed = Buffer.from(tokens.issue({ room: 'r', participant: 'p', exp: Date.now() + 60_000 }));
const wavSeed = Buffer.concat([Buffer.from('RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00', 'latin1')]);
const texts = ['file://a/b.wav', 'data:audio/wav;base64,UklGRg==', 'data:audio/pcm;rate=16000;base64,AAAA', 'control://set_target', 'http://h/x.mp3', 's3://bucket/prefix', 'inline:' + 'A'.repeat(40), '1 AES_CM_128_HMAC_SHA1_80 inline:YUJDZGVmZ2hpSktMbW9QUXJzVFVWV3l6MTIzNDU2', 'call-1@host', '127.0.0.1:4000'];
const text = (rng: Rng): string => mutate(rng, Buffer.from(rng.pick(texts))).toString(rng.int(2) ? 'utf8' : 'latin1');

export const TARGETS: FuzzTarget[] = [
  {
    name: 'RTP header parser',
    run(rng) {
      const d = mutate(rng, rtpSeed);
      const h = parseRtp(d);
      isRtcpPacket(d);
      if (!h) return;
      if (h.payloadOffset < 12 || h.payloadOffset + h.payloadLength > d.length || h.payloadLength < 0) throw new Error(`payload outside the packet: ${JSON.stringify(h)} of ${d.length}`);
      if (h.payloadType > 127 || h.sequenceNumber > 0xffff || h.timestamp > 0xffffffff || h.ssrc > 0xffffffff) throw new Error('header field out of range');
    },
  },
  {
    name: 'SRTP unprotect (tampered, truncated, replayed)',
    run(rng) {
      const d = mutate(rng, srtpSeed);
      const plain = receiver.unprotect(d);
      if (plain && !d.equals(srtpSeed)) throw new Error('a tampered SRTP packet authenticated');
    },
  },
  {
    name: 'DTMF detector and timeline on any packet stream',
    run(rng) {
      const dtmf = new DtmfDetector(8000);
      let frames = 0;
      const tl = new InboundTimeline({ onFrame: (f) => { frames++; if (f.samples.length !== 160) throw new Error('frame of the wrong size'); } });
      let t = 0;
      for (let i = 0; i < 40; i++) {
        const digits = dtmf.push(rng.int(2) ? 1000 + rng.int(3) * 800 : rng.int(0x1_0000_0000), rng.bytes(rng.int(6)));
        for (const dg of digits) if (!/^[0-9*#A-D]$/.test(dg.digit)) throw new Error(`digit ${dg.digit}`);
        t += rng.int(60);
        tl.push(t, rng.int(0x10000), (rng.pick([0, 160, 320, rng.int(0x1_0000_0000)]) * (i + 1)) >>> 0, rng.pick([1, 2]), new Int16Array(rng.pick([0, 80, 160, 320, 7])));
        tl.tick(t);
      }
      if (frames > 100_000) throw new Error('timeline emitted an unbounded burst');
    },
  },
  {
    name: 'source lock under foreign packets',
    run(rng) {
      const l = new SourceLock({ policy: 'strict', learningMs: 100 });
      const phone = { address: '10.0.0.1', port: 4000 };
      l.check(phone, 7, 100, false, 0);
      for (let i = 0; i < 30; i++) {
        const from = { address: `10.0.${rng.int(3)}.${rng.int(3)}`, port: 4000 + rng.int(3) };
        const ssrc = rng.pick([7, rng.int(0x1_0000_0000)]);
        const verdict = l.check(from, ssrc, rng.int(0x10000), false, i * 20);
        const same = from.address === phone.address && from.port === phone.port;
        if (verdict === 'moved' && ssrc !== 7 && !same) throw new Error('a foreign SSRC took the call without proof');
      }
    },
  },
  {
    name: 'WAV parser',
    run(rng) {
      expectedOrNothing(() => parseWav(mutate(rng, Buffer.concat([wavSeed, rng.bytes(rng.int(64))]))));
    },
  },
  {
    name: 'URIs, addresses, SDES, call ids and room tokens',
    run(rng) {
      const s = text(rng);
      expectedOrNothing(() => parseAudioUri(s, { maxDataBytes: 1024 }));
      expectedOrNothing(() => parseTargetAddr(s));
      expectedOrNothing(() => parseRecordingUri(s, { fileRoot: '/srv/rec', callId: s, format: 'wav' }));
      expectedOrNothing(() => parseKeyParams('AES_CM_128_HMAC_SHA1_80', s));
      expectedOrNothing(() => parseCryptoAttribute(s));
      const why = callIdProblem(s);
      if (why === null && !/^[\x21-\x7e]{1,256}$/.test(s)) throw new Error(`call id ${JSON.stringify(s)} accepted`);
      const check = tokens.verify(mutate(rng, tokenSeed).toString('latin1'));
      if (check.ok && check.grant.room !== 'r') throw new Error('a forged token verified');
    },
  },
];

/** Runs every target `iterations` times from `seed`; returns inputs run per target. */
export function fuzz(seed: number, iterations: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const t of TARGETS) {
    const rng = new Rng(seed ^ hash(t.name));
    for (let i = 0; i < iterations; i++) {
      try {
        t.run(rng);
      } catch (err) {
        throw new Error(`fuzz target "${t.name}" broke at input ${i} (seed ${seed}): ${err instanceof Error ? err.stack : String(err)}`);
      }
    }
    counts[t.name] = iterations;
  }
  return counts;
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
