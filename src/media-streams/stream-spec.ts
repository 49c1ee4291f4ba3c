import { FORK_FRAME_MS, type ForkEncoding, type ForkSource } from '../audio-fork/audio-fork.ts';
import { OPUS_FRAME_MS } from '../codecs/opus.ts';
import { MediaError } from '../errors/media-error.ts';

/** What a stream carries and how, as asked over gRPC (or sealed in a token for a backend connecting in). */
export interface StreamSpec {
  protocol: 'twilio' | 'raw';
  /** Which audio: the caller, what the service sends, both mixed, or both (stereo / two tracks). */
  source: ForkSource;
  encoding: ForkEncoding;
  sampleRate: number;
  frameMs: number;
  /** The backend may send audio (and marks, clear) back into the call. */
  bidirectional: boolean;
  customParameters: Record<string, string>;
  redialAttempts: number;
}

/** A media stream token: this call, this stream, until exp. */
export interface StreamGrant {
  call: string;
  exp: number;
  spec: StreamSpec;
}

const PCM_RATES = [8000, 16000, 24000, 48000];
const MAX_PARAMS = 32;
const MAX_REDIAL = 20;

export interface StreamSpecInput {
  protocol: string;
  source: string;
  encoding: string;
  sample_rate: number;
  frame_ms: number;
  bidirectional: boolean;
  custom_parameters: Record<string, string>;
  redial_attempts: number;
}

const PROTOCOLS: Record<string, StreamSpec['protocol']> = { MEDIA_STREAM_PROTOCOL_TWILIO: 'twilio', MEDIA_STREAM_PROTOCOL_RAW: 'raw' };
const SOURCES: Record<string, ForkSource> = { AUDIO_SOURCE_CALLER: 'caller', AUDIO_SOURCE_SERVICE: 'service', AUDIO_SOURCE_MIXED: 'mixed', AUDIO_SOURCE_STEREO: 'stereo' };
const ENCODINGS: Record<string, ForkEncoding> = { AUDIO_ENCODING_PCM_S16LE: 'pcm', AUDIO_ENCODING_PCMU: 'pcmu', AUDIO_ENCODING_PCMA: 'pcma', AUDIO_ENCODING_OPUS: 'opus' };

const bad = (why: string): MediaError => new MediaError('invalid_argument', why);

/**
 * The stream a request asks for, or why it cannot be. Twilio's protocol speaks 8 kHz G.711 or
 * L16 in 20 ms media messages, both sides as two tracks; raw carries any format the forks make.
 */
export function streamSpecOf(r: StreamSpecInput): StreamSpec {
  const protocol = PROTOCOLS[r.protocol];
  const source = SOURCES[r.source];
  const encoding = ENCODINGS[r.encoding];
  if (!protocol || !source || !encoding) throw bad('protocol, source and encoding must be known values');
  const g711 = encoding === 'pcmu' || encoding === 'pcma';
  if (protocol === 'twilio') {
    if (encoding === 'opus') throw bad('the twilio protocol carries PCMU, PCMA or L16; use the raw protocol for Opus');
    if (source === 'mixed') throw bad('the twilio protocol sends the caller, the service, or both as two tracks (AUDIO_SOURCE_STEREO); it has no mixed track');
  }
  if (g711 && r.sample_rate && r.sample_rate !== 8000) throw bad('G.711 streams are 8000 Hz');
  const sampleRate = g711 ? 8000 : r.sample_rate || (protocol === 'twilio' ? 8000 : 16000);
  if (!PCM_RATES.includes(sampleRate)) throw bad(`sample_rate must be one of ${PCM_RATES.join(', ')}, got ${sampleRate}`);
  const frameMs = r.frame_ms || 20;
  if (!(FORK_FRAME_MS as readonly number[]).includes(frameMs)) throw bad(`frame_ms must be one of ${FORK_FRAME_MS.join(', ')}, got ${frameMs}`);
  if (encoding === 'opus' && frameMs !== OPUS_FRAME_MS) throw bad(`Opus streams carry one ${OPUS_FRAME_MS} ms packet per message: frame_ms must be ${OPUS_FRAME_MS} (or unset)`);
  if (protocol === 'twilio' && frameMs !== 20) throw bad('the twilio protocol sends 20 ms media messages: frame_ms must be 20 (or unset)');
  const params = Object.entries(r.custom_parameters ?? {});
  if (params.length > MAX_PARAMS || params.some(([k, v]) => k.length > 128 || v.length > 1024)) throw bad(`custom_parameters: at most ${MAX_PARAMS}, names up to 128 and values up to 1024 characters`);
  if (r.redial_attempts > MAX_REDIAL) throw bad(`redial_attempts must be at most ${MAX_REDIAL}`);
  return { protocol, source, encoding, sampleRate, frameMs, bidirectional: r.bidirectional, customParameters: Object.fromEntries(params), redialAttempts: r.redial_attempts };
}

export function isStreamGrant(v: unknown): v is StreamGrant {
  if (typeof v !== 'object' || v === null) return false;
  const g = v as Record<string, unknown>;
  const s = g['spec'] as Record<string, unknown> | undefined;
  return typeof g['call'] === 'string' && typeof g['exp'] === 'number' && typeof s === 'object' && s !== null && typeof s['protocol'] === 'string' && typeof s['encoding'] === 'string' && typeof s['sampleRate'] === 'number';
}

/** The backend's URL with the request's extra query parameters added (its auth, often). */
export function streamUrl(url: string, query: Record<string, string>): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad(`url is not a URL: ${JSON.stringify(url.slice(0, 200))}`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw bad(`url must be ws:// or wss://, got ${u.protocol}//`);
  if (u.username || u.password) throw bad('url must not carry credentials; send them as headers');
  u.hash = '';
  for (const [k, v] of Object.entries(query)) u.searchParams.append(k, v);
  return u;
}
