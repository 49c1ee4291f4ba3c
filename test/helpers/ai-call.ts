import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import { dominantHz, tone } from './audio.ts';
import { eventually, type TestClient } from './grpc-client.ts';
import type { RtpPeer } from './rtp-peer.ts';

type Stream = grpc.ClientReadableStream<Record<string, unknown>>;
type Duplex = grpc.ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;

/** A call placed by AllocatePort through `c`; fails the test when it is refused. */
export async function allocateCall(c: TestClient, id: string): Promise<{ id: string; port: number }> {
  const r = await c.media_<{ rtp_port: number }>('AllocatePort', { call_id: id });
  assert.equal(r.error, undefined, r.error?.details);
  return { id, port: r.response!.rtp_port };
}

/** A RecordAudio fork of the call on `port` at 16 kHz: its frames as they come, and its status. */
export function openFork(c: TestClient, port: number): { frames: Buffer[]; status: Promise<grpc.StatusObject>; stream: Stream } {
  const stream = (c.media as unknown as Record<string, (r: unknown) => Stream>).RecordAudio!({ server_rtp_port: port, target_sample_rate: 16000 });
  const frames: Buffer[] = [];
  stream.on('data', (m: { audio_data: Buffer }) => frames.push(m.audio_data));
  stream.on('error', () => {});
  return { frames, stream, status: new Promise((r) => stream.on('status', r)) };
}

/** One chunk of 16 kHz TTS into the call over StreamAudioToCall; resolves with the stream's status once it played. */
export function streamToCall(c: TestClient, callId: string, chunk: Buffer): Promise<grpc.StatusObject> {
  return new Promise((resolve) => {
    const call = (c.media as unknown as Record<string, () => Duplex>).StreamAudioToCall!();
    call.on('data', () => {});
    call.on('error', () => {});
    call.on('status', resolve);
    call.write({ call_id: callId, audio_chunk: chunk });
    call.end();
  });
}

/**
 * An AI call's two directions through `c`: the caller's 400 Hz reaches a fork, and 600 Hz of
 * TTS reaches the phone.
 */
export async function hearsBothWays(c: TestClient, call: { id: string; port: number }, phone: RtpPeer): Promise<void> {
  const played = await c.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: call.port, rtp_target_addr: phone.address });
  assert.equal(played.error, undefined, played.error?.details);
  const f = openFork(c, call.port);
  await new Promise((r) => setTimeout(r, 100));
  await phone.sendPcm(tone(400, 1000, 8000), call.port);
  await eventually(() => f.frames.length >= 40, 3000);
  f.stream.cancel();
  const hz = dominantHz(new Int16Array(new Uint8Array(Buffer.concat(f.frames)).buffer), 16000);
  assert.ok(Math.abs(hz - 400) < 20, `call on port ${call.port}: the fork heard ${hz.toFixed(0)} Hz, not the caller's 400 Hz`);
  const tts = await streamToCall(c, call.id, Buffer.from(tone(600, 600, 16000).buffer));
  assert.equal(tts.code, 0, tts.details);
  await eventually(() => phone.received.length >= 25, 5000);
  const heard = dominantHz(phone.decoded('PCMU'), 8000);
  assert.ok(Math.abs(heard - 600) < 30, `call on port ${call.port}: the phone heard ${heard.toFixed(0)} Hz, not the TTS's 600 Hz`);
}
