import type * as grpc from '@grpc/grpc-js';
import { decodeG711, encodeG711 } from '../codecs/g711.ts';
import { Resampler } from '../codecs/resampler.ts';
import { AudioFork, type ForkSource } from '../audio-fork/audio-fork.ts';

/** One sample of every message the media path writes, so its encoder exists before a call needs it. */
const RESPONSE_SAMPLES: Record<string, object[]> = {
  RecordAudio: [{ audio_data: Buffer.alloc(640), media_type: 'audio/L16;rate=16000' }],
  StreamAudio: [{ format: { media_type: 'x', sample_rate: 8000, channels: 1, frame_ms: 20 } }, { frame: { data: Buffer.alloc(2), rtp_timestamp: 1, sequence: 1, concealed: true } }],
  StreamAudioToCall: [{ success: true, error_message: '' }],
  InjectAudio: [{ ready: { server_rtp_port: 1, call_id: 'x' } }, { mark: { name: 'x', cleared: false } }, { cleared: { dropped_ms: 1 } }, { underrun: { count: 1 } }],
};

/**
 * Pays first-use costs at start-up instead of in the first call's 20 ms budget: protobuf
 * encoders are generated on first use, G.711 tables are built on first use, and the
 * resampler's code is compiled on first use. Measured: without this, the first forked call
 * stalled the media clock once by ~30 ms.
 */
export function warmUpMediaPath(service: grpc.ServiceDefinition): void {
  for (const [method, samples] of Object.entries(RESPONSE_SAMPLES)) {
    const def = service[method];
    if (!def) continue;
    for (const s of samples) def.responseSerialize(s);
  }
  const frame = Int16Array.from({ length: 160 }, (_, i) => Math.round(8000 * Math.sin(i / 3)));
  for (const codec of ['PCMU', 'PCMA'] as const) decodeG711(codec, encodeG711(codec, frame));
  for (const rate of [16000, 24000, 48000]) {
    const up = new Resampler(8000, rate);
    const down = new Resampler(rate, 8000);
    for (let i = 0; i < 5; i++) down.process(up.process(frame));
  }
  // A fork of each kind through its whole frame path, as the first listener of a call would.
  for (const source of ['caller', 'service', 'mixed', 'stereo'] as ForkSource[]) {
    for (const [sampleRate, encoding] of [[8000, 'pcmu'], [16000, 'pcm'], [48000, 'pcm']] as const) {
      const fork = new AudioFork({
        format: { source, sampleRate, frameMs: 20, encoding, channels: source === 'stereo' ? 2 : 1 },
        maxQueueFrames: 4,
        onReadable: () => void fork.shift(),
        onCallClosed: () => {},
      });
      for (let i = 0; i < 5; i++) {
        fork.inbound({ samples: frame, timestamp: i * 160, concealed: false });
        fork.outbound(i % 2 ? frame : null);
      }
    }
  }
}
