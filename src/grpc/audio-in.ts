import type * as grpc from '@grpc/grpc-js';
import { decodeG711 } from '../codecs/g711.ts';
import { PcmAssembler } from '../codecs/pcm-assembler.ts';
import { OPUS_RATES, OpusFrameDecoder } from '../codecs/opus.ts';
import { runInjection, type InjectionCommand } from '../audio-inject/run-injection.ts';
import { MediaError, invalidArgument, shuttingDown } from '../errors/media-error.ts';
import type { Config } from '../config/schema.ts';
import { CALL_RATE, type CallSession } from '../sessions/call-session.ts';
import type { SourceHost, TapHost } from '../sessions/media-host.ts';
import type { Conferences } from '../conference/conferences.ts';
import type { SessionRegistry } from '../sessions/session-registry.ts';
import type { RpcContext } from './middleware.ts';
import { callIdProblem, type StreamAudioToCallRequest, type StreamAudioToCallResponse } from './schemas.ts';

function reader<T>(call: grpc.ServerDuplexStream<T, unknown>): () => Promise<T | null> {
  const it = call[Symbol.asyncIterator]() as AsyncIterator<T>;
  return async () => {
    const r = await it.next();
    return r.done ? null : r.value;
  };
}

interface Deps {
  sessions: SessionRegistry;
  config: Readonly<Config>;
}

interface InjectDeps extends Deps {
  conferences: Conferences;
}

/** StreamAudioToCall (contract): first message names the call; 16 kHz L16 chunks; empty = keep-alive. */
export async function streamAudioToCall(call: grpc.ServerDuplexStream<StreamAudioToCallRequest, StreamAudioToCallResponse>, ctx: RpcContext, deps: Deps): Promise<void> {
  const next = reader(call);
  const first = await next();
  if (!first) return;
  if (!first.call_id) throw invalidArgument('the first StreamAudioToCall message must carry call_id');
  const bad = callIdProblem(first.call_id);
  if (bad) throw invalidArgument(bad);
  ctx.bindCall(first.call_id);
  const session = deps.sessions.byCallId(first.call_id);
  if (!session) throw new MediaError('not_found', `no call session for call_id ${first.call_id}`);
  ctx.bindCall(session.callId, session.tenantId);
  const pcm = new PcmAssembler();
  let pendingFirst: StreamAudioToCallRequest | null = first;
  const result = await runInjection({
    session,
    inputRate: 16000,
    maxBufferMs: deps.config.inject.max_buffer_ms,
    idleMs: deps.config.inject.idle_timeout_seconds * 1000,
    signal: ctx.signal,
    input: {
      async next(): Promise<InjectionCommand | null> {
        const m = pendingFirst ?? (await next());
        pendingFirst = null;
        if (!m) return null;
        if (!m.audio_chunk || m.audio_chunk.length === 0) return { kind: 'keepalive' };
        return { kind: 'audio', pcm: pcm.push(m.audio_chunk) };
      },
    },
    output: { mark: () => {}, cleared: () => {}, underrun: () => {} },
  });
  logEnd(ctx, session, result);
  if (result.reason === 'call_ended') {
    if (session.closeReason === 'shutdown') throw shuttingDown();
    call.write({ success: false, error_message: 'the call ended' });
    return;
  }
  if (result.reason !== 'cancelled') call.write({ success: true, error_message: '' });
}

interface InjectRequest {
  message: 'start' | 'audio' | 'clear' | 'mark';
  start?: { server_rtp_port: number; call_id: string; sample_rate: number; encoding: string; max_buffer_ms: number; conference_id?: string };
  audio?: Buffer;
  mark?: { name: string };
}

const INJECT_RATES = [8000, 16000, 24000, 48000];
/** Below a few frames the queue could not even hold one tick's audio. */
const MIN_BUFFER_MS = 100;
const MAX_BUFFER_MS = 120_000;

/** InjectAudio (addition): explicit format, clear, and marks answered once their audio was sent. */
export async function injectAudio(call: grpc.ServerDuplexStream<InjectRequest, unknown>, ctx: RpcContext, deps: InjectDeps): Promise<void> {
  const next = reader(call);
  const first = await next();
  if (!first) return;
  if (first.message !== 'start' || !first.start) throw invalidArgument('the first InjectAudio message must be start');
  const st = first.start;
  const bad = st.call_id ? callIdProblem(st.call_id, 'start.call_id') : null;
  if (bad) throw invalidArgument(bad);
  const session: SourceHost | undefined = st.conference_id ? deps.conferences.mixOf(st.conference_id) : st.call_id ? deps.sessions.byCallId(st.call_id) : deps.sessions.byPort(st.server_rtp_port);
  if (!session) throw new MediaError('not_found', st.call_id ? `no call session for call_id ${st.call_id}` : `no call session on port ${st.server_rtp_port}`);
  ctx.bindCall(session.callId, session.tenantId);
  const g711 = st.encoding === 'AUDIO_ENCODING_PCMU' ? 'PCMU' : st.encoding === 'AUDIO_ENCODING_PCMA' ? 'PCMA' : null;
  const isOpus = st.encoding === 'AUDIO_ENCODING_OPUS';
  // Opus packets say their own bandwidth and are decoded straight at the call's rate; a
  // sample_rate given with them (the client encoder's rate) must be an Opus rate, and is not used.
  if (isOpus && st.sample_rate && !(OPUS_RATES as readonly number[]).includes(st.sample_rate)) {
    throw invalidArgument(`with Opus, sample_rate is unset or the encoder's rate (${OPUS_RATES.join(', ')}), got ${st.sample_rate}`);
  }
  if (st.max_buffer_ms && (st.max_buffer_ms < MIN_BUFFER_MS || st.max_buffer_ms > MAX_BUFFER_MS)) {
    throw invalidArgument(`max_buffer_ms must be unset or ${MIN_BUFFER_MS}-${MAX_BUFFER_MS}, got ${st.max_buffer_ms}`);
  }
  const rate = g711 ? 8000 : isOpus ? CALL_RATE : st.sample_rate || 16000;
  if (!INJECT_RATES.includes(rate)) throw invalidArgument(`sample_rate must be one of ${INJECT_RATES.join(', ')}, got ${rate}`);
  // Built before ready, so a missing codec is an error status, not a stream that fails later.
  const opus = isOpus ? new OpusFrameDecoder({ sampleRate: CALL_RATE }) : null;
  let packets = 0;
  const pcm = new PcmAssembler();
  call.write({ ready: { server_rtp_port: session.port, call_id: session.callId } });
  const result = await runInjection({
    session,
    inputRate: rate,
    maxBufferMs: st.max_buffer_ms || deps.config.inject.max_buffer_ms,
    idleMs: deps.config.inject.idle_timeout_seconds * 1000,
    signal: ctx.signal,
    input: {
      async next(): Promise<InjectionCommand | null> {
        const m = await next();
        if (!m) return null;
        switch (m.message) {
          case 'audio':
            if (!m.audio || m.audio.length === 0) return { kind: 'keepalive' };
            if (opus) return { kind: 'audio', pcm: decodeOpus(opus, m.audio, ++packets) };
            return { kind: 'audio', pcm: g711 ? decodeG711(g711, m.audio) : pcm.push(m.audio) };
          case 'clear':
            return { kind: 'clear' };
          case 'mark':
            return { kind: 'mark', name: m.mark?.name ?? '' };
          default:
            throw invalidArgument('start may be sent only once');
        }
      },
    },
    output: {
      mark: (m) => call.write({ mark: { name: m.name, cleared: m.cleared } }),
      cleared: (ms) => call.write({ cleared: { dropped_ms: ms } }),
      underrun: (count) => call.write({ underrun: { count } }),
    },
  });
  logEnd(ctx, session, result);
  if (result.reason === 'call_ended') throw session.closeReason === 'shutdown' ? shuttingDown() : new MediaError('not_found', 'the call ended');
}

/** One message, one Opus packet of any legal duration (2.5-120 ms); a corrupt one ends the stream. */
function decodeOpus(decoder: OpusFrameDecoder, packet: Buffer, n: number): Int16Array {
  try {
    return decoder.decode(packet);
  } catch (error) {
    const why = error instanceof MediaError ? error.message : String(error);
    throw invalidArgument(`audio message ${n} is not a valid Opus packet (${packet.length} bytes, one packet per message): ${why}`);
  }
}

function logEnd(ctx: RpcContext, session: TapHost, r: { reason: string; underruns: number }): void {
  ctx.log.info({ event: 'INJECTION_ENDED', attributes: { reason: r.reason, 'inject.underruns': r.underruns, 'rtp.port': session.port } }, `audio injection ended (${r.reason})`);
}
