import type { CallSession } from '../sessions/call-session.ts';
import { CODEC_IMPAIRMENT, mosFromR, rFactor } from './e-model.ts';
import type { RemoteReports } from './remote-reports.ts';
import type { VoipMetrics } from './rtcp.ts';

/**
 * The service's own share of the one-way delay the E-model is given (a 20 ms frame and the
 * 40 ms reorder window); the network's is half the RTCP round trip once measured, else none.
 */
const ASSUMED_DELAY_MS = 60;

export interface CallQuality {
  call_id: string;
  server_rtp_port: number;
  codec: string;
  inbound: {
    packets: number;
    expected: number;
    lost: number;
    loss_ratio: number;
    jitter_ms: number;
    ssrc: number;
    /** Runs of consecutive lost packets, and the longest (the loss pattern: bursts or isolated). */
    loss_bursts: number;
    longest_loss_burst: number;
    /** 20 ms frames the service concealed, and packets that came too late to play, while it listened to the caller (echo, taps). */
    concealed_frames: number;
    late_packets: number;
  };
  outbound: { packets: number; bytes: number; ssrc: number };
  mos: number;
  r_factor: number;
  duration_s: number;
  /** How RTCP travels on this leg, and what SRTCP refused. */
  rtcp: { local_port: number; muxed: boolean; remote: string; srtcp: boolean; sent: number; received: number; srtcp_auth_failures: number; srtcp_replays: number };
  remote: {
    reports: number;
    cname: string;
    bye: boolean;
    has_sender_report: boolean;
    sender_packets: number;
    sender_octets: number;
    received_at_sender_report: number;
    has_report_of_ours: boolean;
    fraction_lost: number;
    cumulative_lost: number;
    jitter: number;
    malformed: number;
    has_rtt: boolean;
    rtt_ms: number;
    /** RTCP XR VoIP metrics (RFC 3611 4.7) the phone sent about the service's stream, if any. */
    voip_metrics?: VoipMetricsOut;
  };
}

/** RFC 3611 4.7 as GetCallQuality says it; a value the phone marked unavailable is left out. */
export interface VoipMetricsOut {
  loss_rate: number;
  discard_rate: number;
  burst_density: number;
  gap_density: number;
  burst_duration_ms: number;
  gap_duration_ms: number;
  round_trip_delay_ms: number;
  end_system_delay_ms: number;
  signal_level_dbm?: number;
  noise_level_dbm?: number;
  rerl_db?: number;
  gmin: number;
  r_factor?: number;
  ext_r_factor?: number;
  mos_lq?: number;
  mos_cq?: number;
  plc: string;
  jb_adaptive?: boolean;
  jb_nominal_ms: number;
  jb_max_ms: number;
  jb_abs_max_ms: number;
}

function voipOf(v: VoipMetrics): VoipMetricsOut {
  const out: VoipMetricsOut = {
    loss_rate: +v.lossRate.toFixed(4),
    discard_rate: +v.discardRate.toFixed(4),
    burst_density: +v.burstDensity.toFixed(4),
    gap_density: +v.gapDensity.toFixed(4),
    burst_duration_ms: v.burstDurationMs,
    gap_duration_ms: v.gapDurationMs,
    round_trip_delay_ms: v.roundTripDelayMs,
    end_system_delay_ms: v.endSystemDelayMs,
    gmin: v.gmin,
    plc: v.plc,
    jb_nominal_ms: v.jitterBuffer.nominalMs,
    jb_max_ms: v.jitterBuffer.maxMs,
    jb_abs_max_ms: v.jitterBuffer.absMaxMs,
  };
  if (v.signalLevelDbm !== null) out.signal_level_dbm = v.signalLevelDbm;
  if (v.noiseLevelDbm !== null) out.noise_level_dbm = v.noiseLevelDbm;
  if (v.rerlDb !== null) out.rerl_db = v.rerlDb;
  if (v.rFactor !== null) out.r_factor = v.rFactor;
  if (v.extRFactor !== null) out.ext_r_factor = v.extRFactor;
  if (v.mosLq !== null) out.mos_lq = v.mosLq;
  if (v.mosCq !== null) out.mos_cq = v.mosCq;
  if (v.jitterBuffer.adaptive !== null) out.jb_adaptive = v.jitterBuffer.adaptive;
  return out;
}

export function callQuality(s: CallSession): CallQuality {
  const q = s.inboundQuality;
  const c = s.endpoint.counters;
  const codec = s.wireCodec;
  // Measured: half the round trip is the network's share of the delay.
  const rtt = s.remoteReports.state.rttMs;
  const r = rFactor(CODEC_IMPAIRMENT[codec], q.lossRatio, ASSUMED_DELAY_MS + q.jitterMs + (rtt ?? 0) / 2);
  return {
    call_id: s.callId,
    server_rtp_port: s.port,
    codec,
    inbound: {
      packets: q.received,
      expected: q.expected,
      lost: q.lost,
      loss_ratio: +q.lossRatio.toFixed(4),
      jitter_ms: +q.jitterMs.toFixed(2),
      ssrc: Math.max(0, q.ssrc),
      loss_bursts: q.lossBursts,
      longest_loss_burst: q.longestLossBurst,
      concealed_frames: s.inboundStats.concealedFrames,
      late_packets: s.inboundStats.late,
    },
    outbound: { packets: c.packetsOut, bytes: c.bytesOut, ssrc: s.ssrc >>> 0 },
    mos: +mosFromR(r).toFixed(2),
    r_factor: +r.toFixed(1),
    duration_s: +((performance.now() - s.createdAtMs) / 1000).toFixed(1),
    rtcp: rtcpOf(s),
    remote: remoteOf(s.remoteReports.state),
  };
}

function rtcpOf(s: CallSession): CallQuality['rtcp'] {
  const e = s.endpoint;
  const r = e.rtcpRoute;
  const to = r ?? e.target;
  return {
    local_port: r?.via === 'rtcp' ? e.port + 1 : e.port,
    muxed: r === null,
    remote: to ? `${to.address}:${to.port}` : '',
    srtcp: s.srtcp,
    sent: e.counters.rtcpOut,
    received: s.remoteReports.state.reports + s.remoteReports.state.malformed,
    srtcp_auth_failures: e.counters.srtcpAuthFailures,
    srtcp_replays: e.counters.srtcpReplays,
  };
}

function remoteOf(r: RemoteReports): CallQuality['remote'] {
  return {
    reports: r.reports,
    cname: r.cname,
    bye: r.bye,
    has_sender_report: r.sender !== null,
    sender_packets: r.sender?.packets ?? 0,
    sender_octets: r.sender?.octets ?? 0,
    received_at_sender_report: r.sender?.receivedHere ?? 0,
    has_report_of_ours: r.ofOurs !== null,
    fraction_lost: +(r.ofOurs?.fractionLost ?? 0).toFixed(4),
    cumulative_lost: r.ofOurs?.cumulativeLost ?? 0,
    jitter: r.ofOurs?.jitter ?? 0,
    malformed: r.malformed,
    has_rtt: r.rttMs !== null,
    rtt_ms: +(r.rttMs ?? 0).toFixed(1),
    ...(r.voip ? { voip_metrics: voipOf(r.voip) } : {}),
  };
}
