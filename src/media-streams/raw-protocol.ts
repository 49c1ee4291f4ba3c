import type { ForkFrame } from '../audio-fork/audio-fork.ts';
import { CLOSE, ProtocolError, markName, parseJson, type BackendMessage, type StreamDescription, type StreamTrack, type WireProtocol } from './protocol.ts';

const ENCODING_NAMES: Record<string, string> = { pcm: 'L16', pcmu: 'PCMU', pcma: 'PCMA', opus: 'OPUS' };

/**
 * The lowest-overhead protocol: one JSON start message, then the audio itself as binary
 * messages both ways (one frame each; Opus: one packet each). Control travels as JSON text:
 * mark, clear and stop from the backend; mark, dtmf, cleared, underrun, dropped and stop to it.
 */
export class RawProtocol implements WireProtocol {
  readonly name = 'raw';
  readonly tracks: readonly StreamTrack[];
  readonly #d: StreamDescription;

  constructor(d: StreamDescription) {
    this.#d = d;
    this.tracks = [{ track: 'audio', source: d.source, channels: d.source === 'stereo' ? 2 : 1 }];
  }

  opening(): string[] {
    const d = this.#d;
    return [
      JSON.stringify({
        event: 'start',
        streamId: d.streamId,
        callId: d.callId,
        source: d.source,
        format: { encoding: ENCODING_NAMES[d.encoding], sampleRate: d.sampleRate, channels: this.tracks[0]!.channels, frameMs: d.frameMs },
        bidirectional: d.bidirectional,
        customParameters: d.customParameters,
      }),
    ];
  }

  media(_track: StreamTrack, frame: ForkFrame): Buffer {
    return frame.data;
  }

  mark(name: string, cleared: boolean): string {
    return JSON.stringify({ event: 'mark', name, cleared });
  }

  dtmf(digit: string, durationMs: number): string {
    return JSON.stringify({ event: 'dtmf', digit, durationMs });
  }

  notice(kind: 'cleared' | 'underrun' | 'dropped', value: number): string {
    return JSON.stringify(kind === 'cleared' ? { event: 'cleared', droppedMs: value } : kind === 'underrun' ? { event: 'underrun', count: value } : { event: 'dropped', frames: value });
  }

  stop(reason: string): string {
    return JSON.stringify({ event: 'stop', reason });
  }

  parse(data: Buffer, binary: boolean): BackendMessage {
    if (binary) return { kind: 'audio', data };
    const m = parseJson(data);
    switch (m['event']) {
      case 'mark':
        return { kind: 'mark', name: markName(m['name']) };
      case 'clear':
        return { kind: 'clear' };
      case 'stop':
        return { kind: 'stop' };
      default:
        if (typeof m['event'] !== 'string') throw new ProtocolError(CLOSE.invalidPayload, 'a message must have an event');
        return { kind: 'ignored', what: m['event'].slice(0, 32) };
    }
  }
}
