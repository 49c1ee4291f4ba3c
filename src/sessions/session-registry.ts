import { performance } from 'node:perf_hooks';
import type { Config } from '../config/schema.ts';
import { MediaError } from '../errors/media-error.ts';
import { callQuality } from '../quality/call-quality.ts';
import { genericEvent, type EventPublisher } from '../events/types.ts';
import type { Logger, Logging } from '../logging/logger.ts';
import type { MediaClock } from '../media-path/clock.ts';
import { describeUri } from '../playback/audio-uri.ts';
import { RtpEndpoint } from '../rtp-bridge/rtp-endpoint.ts';
import { CallSession, MIN_REPORT_GAP_MS, type CallSrtp, type CloseReason, type LegCodec, type SessionObserver } from './call-session.ts';
import type { OpusLegOptions } from '../rtp-bridge/opus-leg.ts';
import type { SessionMetrics } from './session-metrics.ts';
import { PortAllocator } from './port-allocator.ts';
import type { CallSnapshot } from './call-snapshot.ts';
import { senderAfter } from '../rtp-bridge/rtp-sender.ts';
import { srtpFromKeys } from '../rtp-bridge/srtp-negotiation.ts';
import type { WakeCoalescer } from '../media-path/wake-coalescing.ts';

export interface AllocateOptions {
  callId: string;
  traceId: string;
  tenantId: string;
  /** SDES-SRTP of the leg; its answer is returned again to a retried AllocatePort. */
  srtp?: CallSrtp;
  /** The leg's codec; unset: G.711 learned from the phone's packets. */
  codec?: LegCodec;
  /** Required with codec OPUS. */
  opus?: OpusLegOptions;
}

const BIND_ATTEMPTS = 8;

export interface SessionWatcher {
  opened(session: CallSession): void;
  closed(session: CallSession): void;
}

/** How often a live call's quality is judged, and how much of it must have arrived first (3 s). */
const QUALITY_CHECK_MS = 2500;
const QUALITY_MIN_PACKETS = 150;

/**
 * Every call session, by port and by call id. It hands out ports, closes sessions that
 * went quiet, and is the one place sessions are created and forgotten.
 */
export class SessionRegistry {
  readonly #byPort = new Map<number, CallSession>();
  #opened = 0;
  readonly #byCall = new Map<string, CallSession>();
  readonly #pending = new Map<string, Promise<CallSession>>();
  readonly #ports: PortAllocator;
  readonly #config: Config['rtp'];
  readonly #clock: MediaClock;
  readonly #logging: Logging;
  readonly #log: Logger;
  readonly #events: EventPublisher;
  readonly #metrics: SessionMetrics;
  readonly #observer: SessionObserver;
  #sweep: NodeJS.Timeout | undefined;
  readonly #reports: NodeJS.Timeout;
  #closed = false;
  #draining = false;
  readonly #emptyWaiters = new Set<() => void>();
  readonly #watcher: SessionWatcher | undefined;
  readonly #wake: WakeCoalescer | undefined;

  constructor(opts: {
    config: Config['rtp'];
    clock: MediaClock;
    logging: Logging;
    events: EventPublisher;
    metrics: SessionMetrics;
    /** Told of every call that opens and closes (a shard's supervisor keeps its directory so). */
    watcher?: SessionWatcher;
    /** Told of every RTP packet, to let the loop's wake-ups gather several. */
    wake?: WakeCoalescer;
  }) {
    this.#watcher = opts.watcher;
    this.#wake = opts.wake;
    this.#config = opts.config;
    this.#clock = opts.clock;
    this.#logging = opts.logging;
    this.#log = opts.logging.process.child({ component: 'sessions' });
    this.#events = opts.events;
    this.#metrics = opts.metrics;
    this.#ports = new PortAllocator({ min: opts.config.port_min, max: opts.config.port_max, quarantineSeconds: opts.config.quarantine_seconds });
    this.#metrics.bindPorts(this.#ports, () => this.#byPort.values());
    this.#observer = this.#makeObserver();
    // One timer for every call's RTCP, not one per call.
    this.#reports = setInterval(() => {
      const now = performance.now();
      for (const s of this.#byPort.values()) {
        s.reportIfDue(now);
        if (s.qualityDueMs <= now) this.#judgeQuality(s, now);
      }
    }, 500);
    this.#reports.unref();
    if (opts.config.inactivity_timeout_seconds > 0) {
      this.#sweep = setInterval(() => this.#closeInactive(), Math.min(1000, opts.config.inactivity_timeout_seconds * 250));
      this.#sweep.unref();
    }
  }

  get size(): number {
    return this.#byPort.size;
  }

  byPort(port: number): CallSession | undefined {
    return this.#byPort.get(port);
  }

  byCallId(callId: string): CallSession | undefined {
    return this.#byCall.get(callId);
  }

  /** The session on a port, or NOT_FOUND for the client. */
  require(port: number): CallSession {
    const s = this.#byPort.get(port);
    if (!s) throw new MediaError('not_found', `no call session on port ${port}`);
    return s;
  }

  /** A call named by its call id when one is given, else by its port. */
  requireRef(r: { server_rtp_port: number; call_id: string }): CallSession {
    if (!r.call_id) return this.require(r.server_rtp_port);
    const found = this.byCallId(r.call_id);
    if (!found) throw new MediaError('not_found', `no call session for call_id ${r.call_id}`);
    return found;
  }

  /** Idempotent per call id: a retried AllocatePort gets the same session and port. */
  allocate(opts: AllocateOptions): Promise<CallSession> {
    if (this.#closed) return Promise.reject(new MediaError('unavailable', 'the media service is shutting down'));
    const existing = this.#byCall.get(opts.callId);
    if (existing) return Promise.resolve(existing);
    const inFlight = this.#pending.get(opts.callId);
    if (inFlight) return inFlight;
    if (this.#draining) return Promise.reject(new MediaError('unavailable', 'the media service is draining: it takes no new calls'));
    const p = this.#create(opts).finally(() => this.#pending.delete(opts.callId));
    this.#pending.set(opts.callId, p);
    return p;
  }

  /**
   * Carries on a call another process of this shard was carrying when it died: the same
   * port, the same phone, SRTP and outbound stream going on from the snapshot.
   */
  async restore(snap: CallSnapshot): Promise<CallSession> {
    if (this.#byCall.has(snap.callId) || this.#byPort.has(snap.port)) throw new MediaError('already_exists', `call ${snap.callId} is already live`);
    if (!this.#ports.claim(snap.port)) throw new MediaError('failed_precondition', `port ${snap.port} is not in this shard's range or not free`);
    let endpoint: RtpEndpoint;
    try {
      // The old process's sockets died with it, so RTP+1 is free again; if something else took
      // it meanwhile, the call goes on with RTCP multiplexed rather than not at all.
      endpoint = await RtpEndpoint.bind({ ...this.#endpointOptions(snap.port), rtcpPort: 'optional' });
    } catch (error) {
      this.#ports.release(snap.port);
      throw error;
    }
    let srtp: CallSrtp | undefined;
    if (snap.srtp) {
      const { protection } = srtpFromKeys(snap.srtp.remote, snap.srtp.answer);
      protection.inbound.resume(snap.srtp.inbound);
      protection.outbound.resume(snap.srtp.outbound);
      protection.rtcpInbound.resume(snap.srtp.rtcpInbound ?? []);
      // The old process may have reported after its snapshot: skip as many indexes as it could have used.
      protection.rtcpOutbound.resume(snap.srtp.rtcpOutbound ?? [], Math.ceil(Math.max(0, Date.now() - snap.takenAtMs) / MIN_REPORT_GAP_MS) + 1);
      srtp = { remote: snap.srtp.remote, answer: snap.srtp.answer, ...protection };
      endpoint.setProtection(protection.inbound, protection.outbound, { inbound: protection.rtcpInbound, outbound: protection.rtcpOutbound });
    }
    endpoint.restoreRouting(snap.routing);
    const log = this.#logging.forContext({ trace_id: snap.traceId, call_id: snap.callId, tenant_id: snap.tenantId });
    if (endpoint.rtcpPort === null) log.warn({ event: 'RTCP_PORT_BUSY', attributes: { 'rtp.port': snap.port, 'rtcp.port': snap.port + 1 } }, 'RTCP port held by another process; RTCP goes multiplexed on the RTP port');
    const elapsedMs = Date.now() - snap.takenAtMs;
    let session: CallSession;
    try {
      session = new CallSession({
        callId: snap.callId,
        traceId: snap.traceId,
        tenantId: snap.tenantId,
        endpoint,
        clock: this.#clock,
        log,
        observer: this.#observer,
        telephoneEventPayloadType: this.#config.telephone_event_payload_type,
        sender: senderAfter(snap.sender, elapsedMs, snap.sender.clockRate),
        ...(srtp ? { srtp } : {}),
        ...(snap.codecFixed ? { codec: snap.codec } : {}),
        ...(snap.opus ? { opus: snap.opus } : {}),
      });
    } catch (error) {
      endpoint.close();
      this.#ports.release(snap.port);
      throw error;
    }
    if (!snap.codecFixed && snap.codec !== 'OPUS') session.codec = snap.codec;
    session.setEcho(snap.echo);
    this.#register(session);
    // What was playing died with the old process: the platform hears that it ended.
    for (const uri of snap.prompts) {
      log.info({ event: 'PLAYBACK_FINISHED', attributes: { 'playback.uri': uri, 'playback.result': 'interrupted' } }, 'playback interrupted by a restart');
      this.#events.publish(genericEvent('call.media.playback.finished', { traceId: snap.traceId, tenantId: snap.tenantId, payload: { callId: snap.callId, uri, status: 'interrupted' } }));
    }
    log.warn(
      { event: 'SESSION_RESTORED', attributes: { 'rtp.port': snap.port, 'rtp.ssrc': session.ssrc, 'restore.gap_ms': elapsedMs, 'rtp.srtp': !!srtp } },
      'call carried on after its media shard restarted',
    );
    return session;
  }

  /** Closes the session on a port; false when there was none. */
  release(port: number, reason: CloseReason = 'released'): boolean {
    const s = this.#byPort.get(port);
    if (!s) return false;
    s.close(reason);
    return true;
  }

  /** No new calls from now on; live calls go on (a retried AllocatePort still gets its port). */
  drain(): void {
    this.#draining = true;
  }

  /** Resolves once no call is left, or after `timeoutMs`; true when none is left. */
  whenEmpty(timeoutMs: number): Promise<boolean> {
    if (this.#byPort.size === 0 && this.#pending.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#emptyWaiters.delete(done);
        resolve(this.#byPort.size === 0);
      };
      const timer = setTimeout(done, timeoutMs);
      this.#emptyWaiters.add(done);
    });
  }

  closeAll(reason: CloseReason): void {
    this.#closed = true;
    if (this.#sweep) clearInterval(this.#sweep);
    clearInterval(this.#reports);
    for (const s of [...this.#byPort.values()]) s.close(reason);
  }

  async #create(opts: AllocateOptions): Promise<CallSession> {
    const endpoint = await this.#bindPort();
    if (opts.srtp) endpoint.setProtection(opts.srtp.inbound, opts.srtp.outbound, { inbound: opts.srtp.rtcpInbound, outbound: opts.srtp.rtcpOutbound });
    const log = this.#logging.forContext({ trace_id: opts.traceId, call_id: opts.callId, tenant_id: opts.tenantId });
    let session: CallSession;
    try {
      session = new CallSession({
        callId: opts.callId,
        traceId: opts.traceId,
        tenantId: opts.tenantId,
        endpoint,
        clock: this.#clock,
        log,
        observer: this.#observer,
        telephoneEventPayloadType: this.#config.telephone_event_payload_type,
        ...(opts.srtp ? { srtp: opts.srtp } : {}),
        ...(opts.codec ? { codec: opts.codec } : {}),
        ...(opts.opus ? { opus: opts.opus } : {}),
      });
    } catch (error) {
      // A codec that cannot be built (Opus not installed) must not cost a port.
      endpoint.close();
      this.#ports.release(endpoint.port);
      throw error;
    }
    this.#register(session);
    log.info(
      { event: 'SESSION_CREATED', attributes: { 'rtp.port': endpoint.port, 'sip.call_id': opts.callId, 'rtp.srtp': !!opts.srtp, 'rtp.codec': opts.codec || 'auto' } },
      'call session created',
    );
    return session;
  }

  /** Calls ever opened here: a number that moves whenever calls came (and maybe went). */
  get opened(): number {
    return this.#opened;
  }

  #register(session: CallSession): void {
    this.#opened++;
    this.#byPort.set(session.port, session);
    this.#byCall.set(session.callId, session);
    this.#metrics.activeSessions.set(this.#byPort.size);
    session.on('close', (reason) => this.#forget(session, reason));
    this.#watcher?.opened(session);
  }

  /** Every live call, for snapshots. */
  all(): IterableIterator<CallSession> {
    return this.#byPort.values();
  }

  /** How every call's socket is bound: this service's address, source policy and wake-ups. */
  #endpointOptions(port: number): Parameters<typeof RtpEndpoint.bind>[0] {
    const source = { policy: this.#config.source_policy, learningMs: this.#config.source_learning_ms };
    return { port, address: this.#config.listen_address, source, ...(this.#wake ? { wake: this.#wake } : {}) };
  }

  async #bindPort(): Promise<RtpEndpoint> {
    for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
      const port = this.#ports.take();
      if (port === null) break;
      try {
        return await RtpEndpoint.bind(this.#endpointOptions(port));
      } catch (error) {
        // Another process holds it (or its RTCP neighbour): let it rest in quarantine and try the next one.
        this.#ports.release(port);
        this.#log.warn({ event: 'RTP_PORT_BUSY', error, attributes: { 'rtp.port': port } }, 'RTP port in use by another process');
      }
    }
    this.#metrics.allocationFailures.inc();
    throw new MediaError('resource_exhausted', 'no free RTP port: every port is in use or in quarantine');
  }

  #forget(s: CallSession, reason: CloseReason): void {
    this.#byPort.delete(s.port);
    if (this.#byCall.get(s.callId) === s) this.#byCall.delete(s.callId);
    this.#ports.release(s.port);
    this.#metrics.activeSessions.set(this.#byPort.size);
    this.#metrics.sessionsClosed.inc({ reason });
    this.#metrics.absorb(s);
    this.#watcher?.closed(s);
    if (this.#byPort.size === 0) for (const w of [...this.#emptyWaiters]) w();
    const c = s.endpoint.counters;
    const q = callQuality(s);
    this.#metrics.observeQuality(q);
    s.log.info(
      {
        event: 'SESSION_CLOSED',
        attributes: {
          'rtp.port': s.port,
          reason,
          'rtp.packets_in': c.packetsIn,
          'rtp.packets_out': c.packetsOut,
          'rtp.srtp_auth_failures': c.authFailures,
          ...(s.srtcp ? { 'rtcp.srtcp_auth_failures': c.srtcpAuthFailures, 'rtcp.srtcp_replays': c.srtcpReplays } : {}),
          'rtp.codec': s.wireCodec,
          ...(s.corruptPackets > 0 ? { 'rtp.opus_corrupt': s.corruptPackets } : {}),
          // The caller's timeline, while something listened to it (echo, taps).
          'rtp.inbound_late': s.inboundStats.late,
          'rtp.inbound_reordered': s.inboundStats.reordered,
          'rtp.inbound_concealed_frames': s.inboundStats.concealedFrames,
          'rtp.inbound_rebased': s.inboundStats.rebased,
          'call.duration_ms': Math.round(performance.now() - s.createdAtMs),
          'rtp.inbound_expected': q.inbound.expected,
          'rtp.inbound_lost': q.inbound.lost,
          'rtp.inbound_jitter_ms': q.inbound.jitter_ms,
          'call.mos': q.mos,
        },
      },
      `call session closed (${reason})`,
    );
    this.#events.publish(
      genericEvent('call.media.session.closed', { traceId: s.traceId, tenantId: s.tenantId, payload: { callId: s.callId, port: s.port, reason, quality: q } }),
    );
  }

  /**
   * Every few seconds of a call, once enough of it arrived to judge: the first time its MOS
   * estimate, loss or jitter crosses its threshold, one warning and one event say so.
   */
  #judgeQuality(s: CallSession, now: number): void {
    s.qualityDueMs = now + QUALITY_CHECK_MS;
    if (s.qualityReported || s.inboundQuality.received < QUALITY_MIN_PACKETS) return;
    const q = callQuality(s);
    const c = this.#config;
    const crossed = [
      ...(c.quality_degraded_mos > 0 && q.mos < c.quality_degraded_mos ? ['mos'] : []),
      ...(c.quality_degraded_loss_ratio > 0 && q.inbound.loss_ratio > c.quality_degraded_loss_ratio ? ['loss'] : []),
      ...(c.quality_degraded_jitter_ms > 0 && q.inbound.jitter_ms > c.quality_degraded_jitter_ms ? ['jitter'] : []),
    ];
    if (crossed.length === 0) return;
    s.qualityReported = true;
    this.#metrics.qualityDegraded.inc();
    s.log.warn(
      { event: 'CALL_QUALITY_DEGRADED', attributes: { 'rtp.port': s.port, 'quality.crossed': crossed.join(','), 'call.mos': q.mos, 'rtp.inbound_loss_ratio': q.inbound.loss_ratio, 'rtp.inbound_jitter_ms': q.inbound.jitter_ms } },
      `call quality degraded (${crossed.join(', ')})`,
    );
    this.#events.publish(genericEvent('call.media.quality.degraded', { traceId: s.traceId, tenantId: s.tenantId, payload: { callId: s.callId, port: s.port, crossed, quality: q } }));
  }

  #closeInactive(): void {
    const limitMs = this.#config.inactivity_timeout_seconds * 1000;
    const now = performance.now();
    for (const s of [...this.#byPort.values()]) {
      const idle = now - s.lastRtpMs;
      if (idle < limitMs) continue;
      this.#metrics.sessionTimeouts.inc();
      s.log.warn({ event: 'SESSION_INACTIVE', attributes: { 'rtp.port': s.port, 'rtp.idle_ms': Math.round(idle) } }, 'no RTP received; closing the session');
      this.#events.publish(
        genericEvent('call.media.session.timeout', {
          traceId: s.traceId,
          tenantId: s.tenantId,
          payload: { callId: s.callId, port: s.port, idleSeconds: Math.round(idle / 1000) },
        }),
      );
      s.close('inactivity');
    }
  }

  #makeObserver(): SessionObserver {
    return {
      playbackEnded: (s, p, end) => {
        this.#metrics.playbacks.inc({ result: end });
        s.log.info({ event: 'PLAYBACK_FINISHED', attributes: { 'playback.uri': describeUri(p.uri), 'playback.result': end } }, `playback ${end}`);
        this.#events.publish(
          // The platform keys events by the call's trace (its SIP Call-ID), not by the RPC's.
          genericEvent('call.media.playback.finished', {
            traceId: s.traceId,
            tenantId: s.tenantId,
            payload: { callId: s.callId, uri: p.uri.startsWith('data:') ? describeUri(p.uri) : p.uri, status: end },
          }),
        );
      },
      dtmf: (s, d) => {
        this.#metrics.dtmfDigits.inc();
        s.log.info({ event: 'DTMF_RECEIVED', attributes: { 'dtmf.digit': d.digit, 'dtmf.duration_ms': d.durationMs } }, `DTMF ${d.digit}`);
        this.#events.publish(
          genericEvent('call.media.dtmf.received', { traceId: s.traceId, tenantId: s.tenantId, payload: { callId: s.callId, digit: d.digit, durationMs: d.durationMs, ...(s.conferenceId ? { conferenceId: s.conferenceId } : {}) } }),
        );
      },
    };
  }
}
