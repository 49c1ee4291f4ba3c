import type { RemoteInfo } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { decodeG711, encodeG711, G711_PAYLOAD_TYPE, type G711Codec } from '../codecs/g711.ts';
import type { Logger } from '../logging/logger.ts';
import type { Clocked, MediaClock } from '../media-path/clock.ts';
import { EchoSource } from '../media-path/echo-source.ts';
import { InboundTimeline, type TimelineFrame } from '../media-path/inbound-timeline.ts';
import { Mixer, type AudioSource } from '../media-path/mixer.ts';
import { PlaybackQueue, type PlaybackEnd, type QueuedPrompt } from '../playback/playback-queue.ts';
import { DtmfDetector, type DtmfDigit } from '../rtp-bridge/dtmf.ts';
import type { RtpAddress, RtpEndpoint } from '../rtp-bridge/rtp-endpoint.ts';
import type { RtpHeader } from '../rtp-bridge/rtp-packet.ts';
import { RtpSender, type SenderState } from '../rtp-bridge/rtp-sender.ts';
import { describeUri } from '../playback/audio-uri.ts';
import type { SrtpSession } from '../rtp-bridge/srtp/context.ts';
import type { SrtcpSession } from '../rtp-bridge/srtp/srtcp.ts';
import type { CallSnapshot } from './call-snapshot.ts';
import { OpusLeg, type OpusLegOptions } from '../rtp-bridge/opus-leg.ts';
import { OPUS_RTP_CLOCK } from '../codecs/opus.ts';
import { TypedEmitter } from '../util/typed-emitter.ts';
import { ReceiveStats } from '../quality/receive-stats.ts';
import { RemoteReportsReader } from '../quality/remote-reports.ts';
import { buildRtcp, ntpOf, type OutgoingReport } from '../quality/rtcp-writer.ts';

export const CALL_RATE = 8000;
/** RFC 3550's minimum report interval, and the first report's delay (half of it, 6.2). */
const REPORT_INTERVAL_MS = 5000;
const FIRST_REPORT_MS = 2500;
/** The shortest time between two of a call's reports (intervals are drawn from 0.5-1.5 times the mean). */
export const MIN_REPORT_GAP_MS = REPORT_INTERVAL_MS / 2;
/** How long the first report waits for the phone's first RTCP (stacks send theirs within 1.5 intervals of 5 s). */
const RTCP_LISTEN_MS = 7500;
export const FRAME_SAMPLES = 160;

export type CloseReason = 'released' | 'inactivity' | 'shutdown' | 'error';

/** The codec of the phone leg's RTP. */
export type LegCodec = G711Codec | 'OPUS';

/** Something that listens to a call's audio on the service clock (recorders, forks). */
export interface CallTap {
  /** Every 20 ms of the caller's audio, gap-free (concealed where packets were missing). */
  inbound?(frame: TimelineFrame): void;
  /** Every 20 ms of what the service sent the caller; null while it sent nothing. */
  outbound?(frame: Int16Array | null): void;
  /** The call ended; the tap must release what it holds. */
  callClosed?(reason: CloseReason): void;
}

/** What a session reports upward; the registry turns it into metrics and platform events. */
export interface SessionObserver {
  playbackEnded(s: CallSession, p: QueuedPrompt, end: PlaybackEnd): void;
  dtmf(s: CallSession, d: DtmfDigit): void;
}

export interface CallSessionOptions {
  callId: string;
  traceId: string;
  /** The tenant the call belongs to: every event and log line of the call carries it. */
  tenantId: string;
  endpoint: RtpEndpoint;
  clock: MediaClock;
  log: Logger;
  observer: SessionObserver;
  telephoneEventPayloadType: number;
  srtpAnswer?: { crypto_suite: string; key_params: string };
  /** G.711: the first guess, then learned from the phone's packets (the default). Opus: fixed. */
  codec?: LegCodec;
  /** Required with codec OPUS. */
  opus?: OpusLegOptions;
  /** SDES-SRTP of the leg: both keys and both contexts (a snapshot carries their state). */
  srtp?: CallSrtp;
  /** A call resumed from a snapshot: its outbound stream goes on from here. */
  sender?: SenderState;
}

export interface CallSrtp {
  remote: { crypto_suite: string; key_params: string };
  answer: { crypto_suite: string; key_params: string };
  inbound: SrtpSession;
  outbound: SrtpSession;
  rtcpInbound: SrtcpSession;
  rtcpOutbound: SrtcpSession;
}

const CODEC_BY_PT = new Map<number, G711Codec>([
  [G711_PAYLOAD_TYPE.PCMU, 'PCMU'],
  [G711_PAYLOAD_TYPE.PCMA, 'PCMA'],
]);

/**
 * One phone call: it owns the RTP endpoint, the playback queue, echo, and every tap, and
 * closes them all in one cascade. The inbound side runs on packet arrival; the outbound
 * side runs on the shared clock, 20 ms at a time.
 */
export class CallSession extends TypedEmitter<{ close: [CloseReason]; dtmf: [DtmfDigit] }> implements Clocked {
  readonly callId: string;
  readonly traceId: string;
  readonly tenantId: string;
  readonly endpoint: RtpEndpoint;
  readonly log: Logger;
  readonly createdAtMs = performance.now();
  readonly srtpAnswer: { crypto_suite: string; key_params: string } | undefined;
  lastRtpMs = performance.now();
  /** What the phone's RTP stream looks like on arrival: packets, loss, jitter (RFC 3550). */
  readonly inboundQuality: ReceiveStats;
  /** What the phone reports in its RTCP (multiplexed on the RTP port, or on RTP+1). */
  readonly remoteReports = new RemoteReportsReader();
  /** The caller's codec, learned from its packets; ours follows it (symmetric codec). Unused on an Opus leg. */
  codec: G711Codec = 'PCMU';
  readonly playback: PlaybackQueue;
  readonly #clock: MediaClock;
  readonly #observer: SessionObserver;
  readonly #dtePt: number;
  readonly #timeline: InboundTimeline;
  readonly #dtmf: DtmfDetector;
  /** Set on an Opus leg only: G.711 legs never look at it per packet. */
  readonly #opus: OpusLeg | null = null;
  readonly #mixer = new Mixer(FRAME_SAMPLES);
  readonly #sender: RtpSender;
  readonly #srtp: CallSrtp | undefined;
  readonly #codecFixed: boolean;
  readonly #opusOptions: OpusLegOptions | undefined;
  readonly #taps = new Set<CallTap>();
  readonly #frame = new Int16Array(FRAME_SAMPLES);
  readonly #payload = new Uint8Array(FRAME_SAMPLES);
  #echo: EchoSource | null = null;
  #closed = false;
  /** A conference calls tick() instead of the clock (see driveFrom). */
  #driven = false;
  /** When this call's quality is next judged, and whether it was reported degraded (once per call). */
  qualityDueMs = performance.now() + 2500;
  qualityReported = false;
  /** The conference this call is in, for its events (DTMF carries it). */
  conferenceId: string | null = null;
  #closeReason: CloseReason | null = null;
  /** When this call's next RTCP report is due (performance.now()). */
  #rtcpDueMs = 0;
  #packetsAtLastReport = 0;
  /** The phone's RTCP was read: where the service's goes is known. */
  #heardRtcp = false;
  /** The last tick sent audio (a talk spurt is running). */
  #talking = false;
  /** The clock moved this call ahead of its own phase for a talk spurt (see audioQueued). */
  #expedited = false;

  constructor(opts: CallSessionOptions) {
    super(opts.log);
    this.callId = opts.callId;
    this.traceId = opts.traceId;
    this.tenantId = opts.tenantId;
    this.endpoint = opts.endpoint;
    this.log = opts.log;
    this.#clock = opts.clock;
    this.#observer = opts.observer;
    this.#dtePt = opts.telephoneEventPayloadType;
    this.srtpAnswer = opts.srtpAnswer ?? opts.srtp?.answer;
    this.#srtp = opts.srtp;
    this.#sender = new RtpSender(opts.sender);
    this.#codecFixed = opts.codec !== undefined;
    this.#opusOptions = opts.opus;
    this.playback = new PlaybackQueue({ onEnd: (p, end) => this.#observer.playbackEnded(this, p, end) });
    this.#mixer.add(this.playback);
    this.#timeline = new InboundTimeline({ clockRate: CALL_RATE, onFrame: (f) => this.#onInboundFrame(f) });
    this.inboundQuality = new ReceiveStats(opts.codec === 'OPUS' ? OPUS_RTP_CLOCK : CALL_RATE);
    if (opts.codec === 'OPUS') {
      if (!opts.opus) throw new Error('an Opus leg needs its Opus options');
      this.#opus = new OpusLeg({ ...opts.opus, sampleRate: CALL_RATE });
      // telephone-event beside Opus runs on the 48 kHz clock (as WebRTC offers it).
      this.#dtmf = new DtmfDetector(OPUS_RTP_CLOCK);
      this.endpoint.onPacket((h, p, from) => this.#onOpusRtp(h, p, from));
    } else {
      if (opts.codec) this.codec = opts.codec;
      this.#dtmf = new DtmfDetector(CALL_RATE);
      this.endpoint.onPacket((h, p, from) => this.#onRtp(h, p, from));
    }
    this.endpoint.onRtcp((p) => {
      this.#heardRtcp = true;
      this.remoteReports.read(p, this.inboundQuality.received, this.#sender.ssrc);
    });
    this.#rtcpDueMs = performance.now() + FIRST_REPORT_MS;
    this.#clock.add(this);
  }

  get port(): number {
    return this.endpoint.port;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Why the call ended (null while it runs): streams tell their clients in their own terms. */
  get closeReason(): CloseReason | null {
    return this.#closeReason;
  }

  get ssrc(): number {
    return this.#sender.ssrc;
  }

  /** RTCP is SRTCP both ways on this leg. */
  get srtcp(): boolean {
    return this.#srtp !== undefined;
  }

  /** Everything another process needs to carry this call on (see CallSnapshot). */
  snapshot(): CallSnapshot {
    const srtp = this.#srtp;
    return {
      callId: this.callId,
      traceId: this.traceId,
      tenantId: this.tenantId,
      port: this.port,
      codec: this.wireCodec,
      codecFixed: this.#codecFixed,
      ...(this.#opusOptions ? { opus: this.#opusOptions } : {}),
      ...(srtp
        ? { srtp: { remote: srtp.remote, answer: srtp.answer, inbound: srtp.inbound.streams(), outbound: srtp.outbound.streams(), rtcpInbound: srtp.rtcpInbound.streams(), rtcpOutbound: srtp.rtcpOutbound.streams() } }
        : {}),
      routing: this.endpoint.routing,
      echo: this.echo,
      prompts: this.playback.prompts().map((p) => (p.uri.startsWith('data:') ? describeUri(p.uri) : p.uri)),
      sender: { ...this.#sender.state, clockRate: this.#opus ? OPUS_RTP_CLOCK : CALL_RATE },
      takenAtMs: Date.now(),
    };
  }

  get inboundStats(): InboundTimeline['stats'] {
    return this.#timeline.stats;
  }

  get packetsSent(): number {
    return this.#sender.packets;
  }

  /** The codec on the wire toward the phone. */
  get wireCodec(): LegCodec {
    return this.#opus ? 'OPUS' : this.codec;
  }

  /** Opus packets dropped as undecodable (0 on a G.711 leg). */
  get corruptPackets(): number {
    return this.#opus?.corrupt ?? 0;
  }

  setTarget(target: RtpAddress): void {
    this.endpoint.setTarget(target);
    this.log.info({ event: 'RTP_TARGET_SET', attributes: { 'rtp.port': this.port, 'rtp.target': `${target.address}:${target.port}` } }, 'RTP target set');
  }

  setEcho(on: boolean): void {
    if (on && !this.#echo) {
      this.#listenAgain();
      this.#echo = new EchoSource();
      this.#mixer.add(this.#echo);
    } else if (!on && this.#echo) {
      this.#mixer.remove(this.#echo);
      this.#echo = null;
    }
  }

  get echo(): boolean {
    return this.#echo !== null;
  }

  /** Adds another voice to what the caller hears (injected speech, a conference). */
  addSource(source: AudioSource): void {
    this.#mixer.add(source);
  }

  /**
   * A source just queued audio (injected speech). When that starts a talk spurt, the call
   * moves to the clock slot that fires next, so the first packet leaves within a slot period
   * (5 ms) instead of waiting up to 20 ms for this call's own slot; the spurt keeps that
   * phase (steady 20 ms, continuous sequence numbers, marker bit on its first packet), and
   * the first silent tick puts the call back on its own phase. Mid-spurt this does nothing.
   */
  audioQueued(): void {
    if (this.#closed || this.#talking || !this.endpoint.target) return;
    if (this.#clock.expedite(this)) this.#expedited = true;
  }

  /**
   * `external` true: the clock stops ticking this call, because its conference ticks it
   * right after mixing what it hears (the mix is sent in the same millisecond, not up to a
   * frame later on the call's own phase); false: back on the clock.
   */
  driveFrom(external: boolean): void {
    if (this.#closed || external === this.#driven) return;
    this.#driven = external;
    if (external) this.#clock.remove(this);
    else this.#clock.add(this);
  }

  /** See Mixer.setAside: `source` is mixed last, and what the call hears without it is kept. */
  setAside(source: AudioSource | null): void {
    this.#mixer.setAside(source);
  }

  /** This tick's audio to the caller without the source set aside (null: none). */
  get heardWithoutAside(): Int16Array | null {
    return this.#mixer.without;
  }

  removeSource(source: AudioSource): void {
    this.#mixer.remove(source);
  }

  addTap(tap: CallTap): void {
    this.#listenAgain();
    this.#taps.add(tap);
  }

  /** Nobody read the caller's timeline since its last listener left: start it at live audio. */
  #listenAgain(): void {
    if (!this.#needsInbound()) this.#timeline.reset();
  }

  removeTap(tap: CallTap): void {
    this.#taps.delete(tap);
  }

  tick(nowMs: number): void {
    if (this.#needsInbound()) this.#timeline.tick(nowMs);
    let audio = false;
    // Nothing is sent, and prompts do not advance, until the far end is known.
    if (this.endpoint.target) {
      audio = this.#mixer.mix(this.#frame);
      const opus = this.#opus;
      const packet = opus
        ? this.#sender.next(opus.payloadType, audio ? opus.encode(this.#frame) : null, opus.frameTicks)
        : this.#sender.next(G711_PAYLOAD_TYPE[this.codec], audio ? (this.#mixer.sole?.encoded?.(this.codec) ?? encodeG711(this.codec, this.#frame, this.#payload)) : null, FRAME_SAMPLES);
      if (packet) this.endpoint.send(packet);
    }
    this.#talking = audio;
    if (!audio && this.#expedited) {
      // Silent again: back on our own phase, giving back the tick the spurt's start gained.
      this.#expedited = false;
      this.#clock.settle(this);
    }
    // Taps run on every tick: they are the call's clock (a recording's length is wall time).
    if (this.#taps.size > 0) for (const t of this.#taps) t.outbound?.(audio ? this.#frame : null);
  }

  /** Ends the call's media: every part it owns is closed, once. */
  /**
   * Sends this call's RTCP when it is due (RFC 3550 6.2: every 5 s on average, each interval
   * drawn from 0.5-1.5 times that so calls do not report in step): an SR while the service
   * sends, else an RR, with a report block on the phone's stream and the SDES CNAME.
   */
  reportIfDue(nowMs: number): void {
    if (this.#closed || nowMs < this.#rtcpDueMs) return;
    // Where the phone wants RTCP (multiplexed, or on RTP+1) shows in its own: the first report
    // waits for it a while, so a stack that keeps RTCP apart never gets one on its RTP port.
    if (!this.#heardRtcp && nowMs - this.createdAtMs < RTCP_LISTEN_MS) return;
    this.#rtcpDueMs = nowMs + REPORT_INTERVAL_MS * (0.5 + Math.random());
    this.#sendReport();
  }

  #sendReport(bye?: string): void {
    if (!this.endpoint.canSendRtcp) return;
    const unixMs = performance.timeOrigin + performance.now();
    const ntp = ntpOf(unixMs);
    const c = this.endpoint.counters;
    const sent = this.#sender.packets > this.#packetsAtLastReport;
    this.#packetsAtLastReport = this.#sender.packets;
    const q = this.inboundQuality;
    const sr = this.remoteReports.state.sender;
    const report: OutgoingReport = {
      ssrc: this.#sender.ssrc,
      ...(sent ? { sender: { ntpSec: ntp.sec, ntpFrac: ntp.frac, rtpTimestamp: this.#sender.state.ts, packets: this.#sender.packets, octets: this.#sender.octets } } : {}),
      blocks:
        q.received > 0
          ? [{ ssrc: q.ssrc, fractionLost: q.takeIntervalLoss(), cumulativeLost: q.lost, extendedHighestSeq: q.extendedMax, jitter: q.jitter, lsr: sr?.ntpMiddle ?? 0, dlsr: sr ? ((unixMs - sr.arrivedUnixMs) / 1000) * 65536 : 0 }]
          : [],
      cname: `media-${this.#sender.ssrc.toString(16)}@sentiric`,
      ...(bye !== undefined ? { bye } : {}),
    };
    this.endpoint.sendRtcp(buildRtcp(report));
  }

  close(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    if (!this.#driven) this.#clock.remove(this);
    this.playback.stop();
    // RFC 3550 6.3.7: a participant that leaves says so.
    this.#sendReport('call ended');
    this.endpoint.close();
    for (const t of this.#taps) {
      try {
        t.callClosed?.(reason);
      } catch (error) {
        this.log.error({ event: 'TAP_CLOSE_FAILED', error }, 'a call tap failed to close');
      }
    }
    this.#taps.clear();
    this.safeEmit('close', reason);
    this.removeAllListeners();
  }

  #needsInbound(): boolean {
    return this.#echo !== null || this.#taps.size > 0;
  }

  #onRtp(h: RtpHeader, packet: Buffer, _from: RemoteInfo): void {
    this.lastRtpMs = performance.now();
    this.inboundQuality.packet(h.ssrc, h.sequenceNumber, h.timestamp, this.lastRtpMs);
    const codec = CODEC_BY_PT.get(h.payloadType);
    if (codec) {
      this.codec = codec;
      if (!this.#needsInbound()) return;
      const pcm = decodeG711(codec, packet.subarray(h.payloadOffset, h.payloadOffset + h.payloadLength));
      this.#timeline.push(this.lastRtpMs, h.sequenceNumber, h.timestamp, h.ssrc, pcm);
      return;
    }
    if (h.payloadType === this.#dtePt) {
      for (const d of this.#dtmf.push(h.timestamp, packet.subarray(h.payloadOffset, h.payloadOffset + h.payloadLength))) {
        this.#observer.dtmf(this, d);
        this.safeEmit('dtmf', d);
      }
    }
    // Other payload types (comfort noise, unsupported codecs) are ignored.
  }

  /** An Opus leg's packets: its own handler, so G.711 legs pay nothing for Opus. */
  #onOpusRtp(h: RtpHeader, packet: Buffer, _from: RemoteInfo): void {
    this.lastRtpMs = performance.now();
    this.inboundQuality.packet(h.ssrc, h.sequenceNumber, h.timestamp, this.lastRtpMs);
    const opus = this.#opus!;
    if (h.payloadType === opus.payloadType) {
      if (!this.#needsInbound()) return;
      const pcm = opus.decode(packet.subarray(h.payloadOffset, h.payloadOffset + h.payloadLength));
      if (!pcm) {
        this.endpoint.counters.malformed++;
        if (opus.corrupt === 1) this.log.warn({ event: 'RTP_OPUS_CORRUPT', attributes: { 'rtp.port': this.port, 'rtp.payload_bytes': h.payloadLength } }, 'undecodable Opus packet dropped (further ones are only counted)');
        return;
      }
      this.#timeline.push(this.lastRtpMs, h.sequenceNumber, opus.timestamp(h.timestamp, h.ssrc), h.ssrc, pcm);
      return;
    }
    if (h.payloadType === this.#dtePt) {
      for (const d of this.#dtmf.push(h.timestamp, packet.subarray(h.payloadOffset, h.payloadOffset + h.payloadLength))) {
        this.#observer.dtmf(this, d);
        this.safeEmit('dtmf', d);
      }
    }
  }

  #onInboundFrame(f: TimelineFrame): void {
    this.#echo?.push(f.samples);
    for (const t of this.#taps) t.inbound?.(f);
  }
}
