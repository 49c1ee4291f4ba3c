import type { WebSocket } from 'ws';
import { decodeG711 } from '../codecs/g711.ts';
import { OpusFrameDecoder } from '../codecs/opus.ts';
import { PcmAssembler } from '../codecs/pcm-assembler.ts';
import type { ForkMetrics } from '../audio-fork/fork-metrics.ts';
import { runFork } from '../audio-fork/fork-pump.ts';
import { runInjection, type InjectionCommand } from '../audio-inject/run-injection.ts';
import { MediaError } from '../errors/media-error.ts';
import type { Logger } from '../logging/logger.ts';
import type { DtmfDigit } from '../rtp-bridge/dtmf.ts';
import { CALL_RATE, type CallSession } from '../sessions/call-session.ts';
import { CLOSE, ProtocolError, closeReason, type BackendMessage, type StreamDescription, type WireProtocol } from './protocol.ts';
import type { MediaStreamMetrics } from './media-stream-metrics.ts';

/** Why a stream ended, in the words of its logs, metrics and platform event. */
export type StreamEnd = 'stopped' | 'call_ended' | 'backend_stopped' | 'disconnected' | 'protocol_error' | 'connect_failed';
/** Why one connection of a stream ended. */
type ConnectionEnd = Exclude<StreamEnd, 'connect_failed'>;

export interface StreamEvents {
  /** The backend's connection dropped (not stopped by anyone): the platform hears of it. */
  disconnected(info: { code: number; reason: string; redialing: boolean }): void;
  ended(why: StreamEnd): void;
}

/** Messages from the backend waiting to be played, at most; beyond it the socket is paused (TCP back-pressure). */
const INBOX_HIGH = 64;
const INBOX_LOW = 16;
const MAX_BACKOFF_MS = 5000;
/**
 * A ping travels behind every message sent before it, so its pong says how far behind the
 * backend reads: the kernel's socket buffers hold tens of seconds of audio and say nothing.
 */
const PING_EVERY_MS = 250;
/** Sending stops (the stream's own queue fills, then drops its oldest) while the backend is this far behind. */
const MAX_BEHIND_MS = 1000;
/** A backend that answers no ping for this long is gone (a connection that died without a FIN). */
const DEAD_AFTER_MS = 15_000;
/** A stream's own audio is never idle-timed out: a listening backend may stay silent for minutes. */
const NO_IDLE = 2 ** 31 - 1;

export interface MediaStreamOptions {
  description: StreamDescription;
  session: CallSession;
  protocol: WireProtocol;
  /** Frames kept for a slow backend before the oldest are dropped (per track). */
  maxQueueFrames: number;
  /** Messages handed to the socket and not yet written out before the stream stops sending (then its queue fills and drops). */
  maxUnflushed: number;
  maxBufferMs: number;
  /** Outbound: dials the backend (once per connection). Inbound: the connection the backend opened. */
  connect: () => Promise<WebSocket>;
  redialAttempts: number;
  log: Logger;
  forkMetrics: ForkMetrics;
  metrics: MediaStreamMetrics;
  events: StreamEvents;
}

/**
 * One live audio stream between a call and a speech backend over WebSocket: the call's audio
 * out as the protocol's messages, the backend's audio (marks, clear) back into the call. It
 * owns its connection, redials a dropped one when asked to, and ends with the call. The call
 * never waits for the backend: a slow reader fills a bounded queue that drops its oldest.
 */
export class MediaStream {
  readonly id: string;
  readonly done: Promise<StreamEnd>;
  readonly #o: MediaStreamOptions;
  readonly #stop = new AbortController();
  #stopReason: 'stopped' | 'call_ended' = 'stopped';

  constructor(opts: MediaStreamOptions, first: WebSocket) {
    this.#o = opts;
    this.id = opts.description.streamId;
    this.done = this.#run(first).then((why) => {
      opts.events.ended(why);
      return why;
    });
  }

  /** Ends the stream: a stop message, then a normal close. */
  stop(why: 'stopped' | 'call_ended' = 'stopped'): void {
    this.#stopReason = why;
    this.#stop.abort();
  }

  async #run(first: WebSocket): Promise<StreamEnd> {
    const { session, log } = this.#o;
    const onClose = (): void => this.stop('call_ended');
    session.on('close', onClose);
    try {
      let ws: WebSocket | null = first;
      for (let attempt = 0; ; ) {
        if (ws) {
          attempt = 0;
          const why = await this.#serve(ws);
          if (why !== 'disconnected' || this.#stop.signal.aborted) return this.#stop.signal.aborted ? this.#stopReason : why;
        }
        if (attempt >= this.#o.redialAttempts) return ws ? 'disconnected' : 'connect_failed';
        const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** attempt++);
        if (!(await this.#sleep(delay))) return this.#stopReason;
        try {
          ws = await this.#o.connect();
          this.#o.metrics.connections.inc({ outcome: 'redialled' });
          log.info({ event: 'MEDIA_STREAM_REDIALLED', attributes: { 'stream.id': this.id, 'stream.attempt': attempt } }, 'media stream backend reached again');
        } catch (error) {
          this.#o.metrics.connections.inc({ outcome: 'failed' });
          log.warn({ event: 'MEDIA_STREAM_REDIAL_FAILED', error, attributes: { 'stream.id': this.id, 'stream.attempt': attempt } }, 'media stream backend could not be reached again');
          ws = null;
        }
      }
    } finally {
      session.off('close', onClose);
    }
  }

  /** Waits, unless the stream is stopped first (then false). */
  #sleep(ms: number): Promise<boolean> {
    const signal = this.#stop.signal;
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      const onAbort = (): void => {
        clearTimeout(t);
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Carries one connection until it closes, the backend breaks the protocol, or the stream stops. */
  #serve(ws: WebSocket): Promise<ConnectionEnd> {
    const { session, protocol, log, metrics } = this.#o;
    const conn = new AbortController();
    let unflushed = 0;
    let drainWaiters: (() => void)[] = [];
    let ended: ConnectionEnd | null = null;
    const flushed = (): void => {
      unflushed--;
      if (unflushed <= this.#o.maxUnflushed >> 1 && behindMs() < MAX_BEHIND_MS && drainWaiters.length) {
        const w = drainWaiters;
        drainWaiters = [];
        for (const f of w) f();
      }
    };
    const pings: number[] = [];
    const behindMs = (): number => (pings.length ? performance.now() - pings[0]! : 0);
    const send = (data: string | Buffer): boolean => {
      if (ws.readyState !== ws.OPEN) return true;
      unflushed++;
      ws.send(data, flushed);
      return unflushed < this.#o.maxUnflushed && behindMs() < MAX_BEHIND_MS;
    };
    ws.on('pong', () => {
      pings.shift();
      if (behindMs() < MAX_BEHIND_MS && unflushed <= this.#o.maxUnflushed >> 1 && drainWaiters.length) {
        const w = drainWaiters;
        drainWaiters = [];
        for (const f of w) f();
      }
    });
    const pinger = setInterval(() => {
      if (ws.readyState !== ws.OPEN) return;
      if (behindMs() > DEAD_AFTER_MS) {
        ws.terminate();
        return;
      }
      // One ping in flight beyond the oldest is enough to measure; more would only queue.
      if (pings.length < 2) {
        pings.push(performance.now());
        ws.ping();
      }
    }, PING_EVERY_MS);
    pinger.unref();
    const sendText = (data: string | null): void => {
      if (data !== null) send(data);
    };
    for (const m of protocol.opening()) send(m);

    return new Promise<ConnectionEnd>((resolve) => {
      const finish = (why: ConnectionEnd, code: number, reason: string): void => {
        if (ended) return;
        ended = why;
        clearInterval(pinger);
        conn.abort();
        session.off('dtmf', onDtmf);
        this.#stop.signal.removeEventListener('abort', onStop);
        if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) {
          if (why === 'stopped' || why === 'call_ended') send(protocol.stop(why));
          ws.close(code, reason);
        }
        inbox.close();
        resolve(why);
      };
      const onStop = (): void => finish(this.#stopReason, CLOSE.normal, this.#stopReason === 'call_ended' ? 'the call ended' : 'the stream was stopped');
      const onDtmf = (d: DtmfDigit): void => sendText(protocol.dtmf(d.digit, d.durationMs));
      this.#stop.signal.addEventListener('abort', onStop, { once: true });
      session.on('dtmf', onDtmf);

      const inbox = new Inbox(ws, this.#decoder());
      ws.on('message', (data: Buffer, binary: boolean) => {
        let msg: BackendMessage;
        try {
          msg = protocol.parse(data, binary);
        } catch (err) {
          const e = err instanceof ProtocolError ? err : new ProtocolError(CLOSE.invalidPayload, String(err));
          metrics.refused.inc({ protocol: protocol.name });
          log.warn({ event: 'MEDIA_STREAM_PROTOCOL_ERROR', attributes: { 'stream.id': this.id, 'ws.close_code': e.code, reason: e.message } }, 'the media stream backend broke its protocol; its connection is closed, the call goes on');
          finish('protocol_error', e.code, closeReason(e.message));
          return;
        }
        if (msg.kind === 'stop') {
          finish('backend_stopped', CLOSE.normal, 'stopped by the backend');
          return;
        }
        if (msg.kind === 'ignored') {
          metrics.ignored.inc({ protocol: protocol.name });
          return;
        }
        if (!this.#o.description.bidirectional) {
          metrics.ignored.inc({ protocol: protocol.name });
          return;
        }
        try {
          inbox.push(msg);
        } catch (err) {
          const why = err instanceof MediaError ? err.message : String(err);
          metrics.refused.inc({ protocol: protocol.name });
          finish('protocol_error', CLOSE.invalidPayload, closeReason(why));
        }
      });
      ws.on('close', (code: number, reason: Buffer) => {
        if (ended) return;
        const redialing = this.#o.redialAttempts > 0;
        metrics.disconnects.inc();
        log.warn({ event: 'MEDIA_STREAM_DISCONNECTED', attributes: { 'stream.id': this.id, 'ws.close_code': code, reason: reason.toString('utf8').slice(0, 120), redialing } }, 'the media stream backend went away; the call goes on');
        this.#o.events.disconnected({ code, reason: reason.toString('utf8').slice(0, 120), redialing });
        finish('disconnected', code, '');
      });
      ws.on('error', (error: Error) => log.warn({ event: 'MEDIA_STREAM_SOCKET_ERROR', error, attributes: { 'stream.id': this.id } }, 'media stream socket error'));

      // The call's audio out, one fork per track; a gap in a track's sequence is frames dropped for a slow backend.
      for (const track of protocol.tracks) {
        let expected = 0;
        void runFork({
          session,
          format: { source: track.source, sampleRate: this.#o.description.sampleRate, frameMs: this.#o.description.frameMs, encoding: this.#o.description.encoding, channels: track.channels },
          signal: conn.signal,
          metrics: this.#o.forkMetrics,
          maxQueueFrames: this.#o.maxQueueFrames,
          sink: {
            write: (f) => {
              if (f.sequence !== expected) sendText(protocol.notice('dropped', f.sequence - expected));
              expected = f.sequence + 1;
              return send(protocol.media(track, f));
            },
            onceDrain: (cb) => drainWaiters.push(cb),
          },
        });
      }
      if (this.#o.description.bidirectional) {
        void runInjection({
          session,
          inputRate: this.#inputRate(),
          maxBufferMs: this.#o.maxBufferMs,
          idleMs: NO_IDLE,
          signal: conn.signal,
          input: inbox,
          output: {
            mark: (m) => sendText(protocol.mark(m.name, m.cleared)),
            cleared: (ms) => sendText(protocol.notice('cleared', ms)),
            underrun: (n) => sendText(protocol.notice('underrun', n)),
          },
        }).catch((err: unknown) => {
          const why = err instanceof Error ? err.message : String(err);
          metrics.refused.inc({ protocol: protocol.name });
          finish('protocol_error', CLOSE.invalidPayload, closeReason(why));
        });
      }
    });
  }

  #inputRate(): number {
    const d = this.#o.description;
    return d.encoding === 'pcm' ? d.sampleRate : CALL_RATE;
  }

  /** Backend audio in the stream's own format, to PCM at the injection's rate. */
  #decoder(): (data: Buffer) => Int16Array {
    const d = this.#o.description;
    switch (d.encoding) {
      case 'pcmu':
        return (b) => decodeG711('PCMU', b);
      case 'pcma':
        return (b) => decodeG711('PCMA', b);
      case 'opus': {
        const opus = new OpusFrameDecoder({ sampleRate: CALL_RATE });
        return (b) => opus.decode(b);
      }
      default: {
        const pcm = new PcmAssembler();
        return (b) => pcm.push(b);
      }
    }
  }
}

/**
 * The backend's messages waiting for the injection to take them. Above a high-water mark the
 * socket is paused, so a backend sending faster than the call plays waits on TCP, not on memory.
 */
class Inbox {
  readonly #ws: WebSocket;
  readonly #decode: (data: Buffer) => Int16Array;
  readonly #queue: InjectionCommand[] = [];
  #waiter: ((c: InjectionCommand | null) => void) | null = null;
  #closed = false;
  #paused = false;

  constructor(ws: WebSocket, decode: (data: Buffer) => Int16Array) {
    this.#ws = ws;
    this.#decode = decode;
  }

  /** Decodes now, so a corrupt Opus packet is refused as it arrives. */
  push(m: Exclude<BackendMessage, { kind: 'stop' } | { kind: 'ignored' }>): void {
    const c: InjectionCommand = m.kind === 'audio' ? { kind: 'audio', pcm: this.#decode(m.data) } : m.kind === 'mark' ? { kind: 'mark', name: m.name } : { kind: 'clear' };
    if (c.kind === 'clear') {
      // Barge-in: audio still waiting here goes before it reaches the call; its marks stay, answered as cleared.
      for (let i = this.#queue.length - 1; i >= 0; i--) if (this.#queue[i]!.kind === 'audio') this.#queue.splice(i, 1);
    }
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = null;
      w(c);
      return;
    }
    this.#queue.push(c);
    if (!this.#paused && this.#queue.length >= INBOX_HIGH) {
      this.#paused = true;
      this.#ws.pause();
    }
  }

  next(): Promise<InjectionCommand | null> {
    const c = this.#queue.shift();
    if (this.#paused && this.#queue.length <= INBOX_LOW) {
      this.#paused = false;
      this.#ws.resume();
    }
    if (c) return Promise.resolve(c);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((r) => (this.#waiter = r));
  }

  close(): void {
    this.#closed = true;
    this.#waiter?.(null);
    this.#waiter = null;
  }
}
