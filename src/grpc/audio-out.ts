import type * as grpc from '@grpc/grpc-js';
import { FORK_FRAME_MS, FORK_RATES, type ForkEncoding, type ForkFormat, type ForkFrame, type ForkSource } from '../audio-fork/audio-fork.ts';
import { OPUS_FRAME_MS, OPUS_RTP_CLOCK } from '../codecs/opus.ts';
import type { ForkMetrics } from '../audio-fork/fork-metrics.ts';
import { runFork } from '../audio-fork/fork-pump.ts';
import { invalidArgument, shuttingDown } from '../errors/media-error.ts';
import type { SessionRegistry } from '../sessions/session-registry.ts';
import type { TapHost } from '../sessions/media-host.ts';
import type { RpcContext } from './middleware.ts';
import type { RecordAudioRequest, StreamAudioRequest } from './schemas.ts';
import { Encoded, recordAudioResponse, stringField } from './wire.ts';

const DEFAULT_QUEUE_MS = 5000;

/**
 * RecordAudio's message for a frame, in wire form, kept on the frame its listeners share:
 * laid out once however many listeners write it.
 */
function recordMessage(f: ForkFrame, mediaType: Buffer): Encoded {
  const key = f.origin ?? f;
  if (key.encoded instanceof Encoded) return key.encoded;
  const message = recordAudioResponse(f.data, mediaType);
  key.encoded = message;
  return message;
}

/** RecordAudio's media_type field by rate: one rate, one fork, one set of frames. */
const recordMediaTypes = new Map<number, Buffer>();
const recordMediaType = (rate: number): Buffer => {
  let b = recordMediaTypes.get(rate);
  if (!b) recordMediaTypes.set(rate, (b = stringField(2, `audio/L16;rate=${rate}`)));
  return b;
};

function checkRate(rate: number): number {
  if (!(FORK_RATES as readonly number[]).includes(rate)) throw invalidArgument(`sample rate must be one of ${FORK_RATES.join(', ')}, got ${rate}`);
  return rate;
}

/** RecordAudio (contract): the caller's audio as 20 ms frames of L16 mono at the requested rate. */
export async function recordAudio(req: RecordAudioRequest, ctx: RpcContext, call: grpc.ServerWritableStream<unknown, Encoded>, deps: { sessions: SessionRegistry; metrics: ForkMetrics }): Promise<void> {
  const session = deps.sessions.require(req.server_rtp_port);
  const rate = checkRate(req.target_sample_rate || 16000);
  const mediaType = recordMediaType(rate);
  const format: ForkFormat = { source: 'caller', sampleRate: rate, frameMs: 20, encoding: 'pcm', channels: 1 };
  const why = await runFork({
    session,
    format,
    signal: ctx.signal,
    metrics: deps.metrics,
    maxQueueFrames: DEFAULT_QUEUE_MS / 20,
    sink: { write: (f) => call.write(recordMessage(f, mediaType)), onceDrain: (cb) => call.once('drain', cb) },
  });
  ctx.log.info({ event: 'FORK_ENDED', attributes: { reason: why, 'fork.rate': rate } }, `audio stream ended (${why})`);
  if (why === 'shutdown') throw shuttingDown();
}

const SOURCES: Record<StreamAudioRequest['source'], ForkSource> = {
  AUDIO_SOURCE_CALLER: 'caller',
  AUDIO_SOURCE_SERVICE: 'service',
  AUDIO_SOURCE_MIXED: 'mixed',
  AUDIO_SOURCE_STEREO: 'stereo',
};

const ENCODINGS: Record<StreamAudioRequest['encoding'], ForkEncoding> = {
  AUDIO_ENCODING_PCM_S16LE: 'pcm',
  AUDIO_ENCODING_PCMU: 'pcmu',
  AUDIO_ENCODING_PCMA: 'pcma',
  AUDIO_ENCODING_OPUS: 'opus',
};

function mediaTypeOf(encoding: ForkEncoding, rate: number, channels: number): string {
  switch (encoding) {
    case 'pcm':
      return `audio/L16;rate=${rate};channels=${channels}`;
    case 'pcmu':
      return `audio/PCMU;channels=${channels}`;
    case 'pcma':
      return `audio/PCMA;channels=${channels}`;
    case 'opus':
      // As in SDP (RFC 7587): Opus is always named at 48 kHz; sample_rate says what was coded.
      return `audio/opus;rate=${OPUS_RTP_CLOCK};channels=${channels}`;
  }
}

/** StreamAudio (addition): any source, rate, frame size and encoding; format first, then frames. */
export async function streamAudio(req: StreamAudioRequest, ctx: RpcContext, call: grpc.ServerWritableStream<unknown, unknown>, deps: { host: (req: StreamAudioRequest) => TapHost; metrics: ForkMetrics }): Promise<void> {
  const session = deps.host(req);
  const encoding = ENCODINGS[req.encoding];
  const source = SOURCES[req.source];
  const channels = source === 'stereo' ? 2 : 1;
  const g711 = encoding === 'pcmu' || encoding === 'pcma';
  if (g711 && req.sample_rate && req.sample_rate !== 8000) throw invalidArgument('G.711 streams are 8000 Hz');
  // PCM and Opus: the rate the audio is converted to (Opus encodes at that rate).
  const rate = g711 ? 8000 : checkRate(req.sample_rate || 16000);
  const frameMs = req.frame_ms || 20;
  if (encoding === 'opus' && frameMs !== OPUS_FRAME_MS) throw invalidArgument(`Opus streams carry one ${OPUS_FRAME_MS} ms packet per frame: frame_ms must be ${OPUS_FRAME_MS} (or unset), got ${frameMs}`);
  if (!(FORK_FRAME_MS as readonly number[]).includes(frameMs)) throw invalidArgument(`frame_ms must be one of ${FORK_FRAME_MS.join(', ')}, got ${frameMs}`);
  const queueMs = Math.min(60_000, req.max_queue_ms || DEFAULT_QUEUE_MS);
  const mediaType = mediaTypeOf(encoding, rate, channels);
  const why = await runFork({
    session,
    format: { source, sampleRate: rate, frameMs, encoding, channels },
    signal: ctx.signal,
    metrics: deps.metrics,
    maxQueueFrames: Math.max(1, Math.round(queueMs / frameMs)),
    // Written once the fork (and its Opus encoder) exists: a failure is a status, not a half stream.
    onStart: () => call.write({ format: { media_type: mediaType, sample_rate: rate, channels, frame_ms: frameMs, encoding: req.encoding, source: req.source, rtp_clock_rate: 8000 } }),
    sink: {
      write: (f) => call.write({ frame: { data: f.data, rtp_timestamp: f.rtpTimestamp, sequence: f.sequence, concealed: f.concealed } }),
      onceDrain: (cb) => call.once('drain', cb),
    },
  });
  ctx.log.info({ event: 'FORK_ENDED', attributes: { reason: why, 'fork.source': source, 'fork.rate': rate } }, `audio stream ended (${why})`);
  if (why === 'shutdown') throw shuttingDown();
}
