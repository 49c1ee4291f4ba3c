/**
 * What the signaling tests share: the service's own view of its rooms (/debug/rooms,
 * /debug/resources, the rooms gauge), and the smallest valid DTLS and RTP parameters a
 * test client sends without a browser behind it.
 */
import assert from 'node:assert/strict';
import { eventually, metricValue } from '../helpers/grpc-client.ts';
import type { RunningService } from '../helpers/service.ts';
import type { RegistryResources } from '../../src/rooms/room-registry.ts';
import type { Ack, DtlsParameters, RtpParameters } from '../../src/signaling/contract.ts';

export type { RegistryResources };

export const debugRooms = async (svc: RunningService): Promise<RegistryResources> => (await (await fetch(svc.url('/debug/rooms'))).json()) as RegistryResources;

/** Rooms by the three counts an operator has: the gauge, /debug/resources and /debug/rooms. */
export async function roomCounts(svc: RunningService): Promise<{ gauge: number; registry: number; listed: number }> {
  const text = await (await fetch(svc.url('/metrics'))).text();
  const gauge = (metricValue(text, 'sentiric_media_rooms', { call: 'false' }) ?? 0) + (metricValue(text, 'sentiric_media_rooms', { call: 'true' }) ?? 0);
  const registry = ((await (await fetch(svc.url('/debug/resources'))).json()) as { rooms: number }).rooms;
  return { gauge, registry, listed: (await debugRooms(svc)).rooms.length };
}

/** Nothing of any room is left: no room by any count, no router, no WebRTC transport, no load. */
export async function assertNothingLeft(svc: RunningService, timeoutMs = 5000): Promise<void> {
  let last: unknown;
  try {
    await eventually(async () => {
      const counts = await roomCounts(svc);
      const d = await debugRooms(svc);
      last = { counts, debug: d };
      const workersIdle = d.workers.every((w) => w.load === 0 && w.routers === 0 && w.webRtcTransports === 0);
      return counts.gauge === 0 && counts.registry === 0 && counts.listed === 0 && d.creating === 0 && workersIdle;
    }, timeoutMs);
  } catch {
    assert.fail(`something was left behind: ${JSON.stringify(last)}`);
  }
}

/** An ack in a few words, for assertion messages: the whole of a join's answer is pages long. */
export const outcome = (ack: Ack<unknown>): string => (ack.ok ? 'ok' : `${ack.error.code}: ${ack.error.message}`);

/** A client's DTLS parameters: mediasoup stores the fingerprint; no handshake happens here. */
export const CLIENT_DTLS: DtlsParameters = {
  role: 'client',
  fingerprints: [{ algorithm: 'sha-256', value: Array.from({ length: 32 }, (_, i) => (i * 7 + 11).toString(16).padStart(2, '0').toUpperCase()).join(':') }],
};

/** Opus as a browser sends it, with a fixed SSRC. */
export const opusParameters = (ssrc: number): RtpParameters => ({
  codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: { useinbandfec: 1 } }],
  headerExtensions: [],
  encodings: [{ ssrc }],
  rtcp: { cname: `c${ssrc}`, reducedSize: true },
});
