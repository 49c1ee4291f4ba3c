import type { OpusLegOptions } from '../rtp-bridge/opus-leg.ts';
import type { EndpointRouting } from '../rtp-bridge/rtp-endpoint.ts';
import type { SenderState } from '../rtp-bridge/rtp-sender.ts';
import type { SrtpStreamState } from '../rtp-bridge/srtp/context.ts';
import type { SrtcpStreamState } from '../rtp-bridge/srtp/srtcp.ts';
import type { LegCodec } from './call-session.ts';

/**
 * What another process needs to carry a call on where this one stopped: the port, the
 * phone's address and stream, the codec, SRTP keys with their rollover counters and SRTCP
 * indexes, and the
 * outbound stream's SSRC, sequence and timestamp. It holds key material: it travels to the
 * supervisor over the IPC channel and lives in memory only.
 */
export interface CallSnapshot {
  callId: string;
  traceId: string;
  tenantId: string;
  port: number;
  codec: LegCodec;
  /** The codec was fixed by AllocatePort (else G.711 learned from the phone's packets). */
  codecFixed: boolean;
  opus?: OpusLegOptions;
  srtp?: {
    remote: { crypto_suite: string; key_params: string };
    answer: { crypto_suite: string; key_params: string };
    inbound: SrtpStreamState[];
    outbound: SrtpStreamState[];
    /** SRTCP indexes (absent in a snapshot of a process that had none). */
    rtcpInbound?: SrtcpStreamState[];
    rtcpOutbound?: SrtcpStreamState[];
  };
  routing: EndpointRouting;
  echo: boolean;
  /** Prompts playing and queued (data: URIs described, not carried): a restart ends them. */
  prompts: string[];
  /** The port of the call it is bridged with on the same shard. */
  bridgedWith?: number;
  /** The recording running on it (its spool entry goes on being written after a restart). */
  recording?: { id: string };
  sender: SenderState & { clockRate: number };
  /** Wall-clock time of the snapshot (ms since the epoch): the sender goes on from it. */
  takenAtMs: number;
}
