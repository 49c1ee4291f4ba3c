import type { ForkFrame } from '../audio-fork/audio-fork.ts';
import { decodeBase64 } from './base64.ts';
import { CLOSE, ProtocolError, markName, parseJson, type BackendMessage, type StreamDescription, type StreamTrack, type WireProtocol } from './protocol.ts';

const ENCODING_NAMES: Record<string, string> = { pcmu: 'audio/x-mulaw', pcma: 'audio/x-alaw', pcm: 'audio/x-l16' };

/**
 * Twilio Media Streams' messages (connected, start, media, mark, dtmf, stop; from the backend
 * media, mark, clear), so a backend written for Twilio works unchanged. Both sides of the call
 * travel as two tracks, `inbound` (the caller) and `outbound` (what the service sends), as
 * Twilio sends them; timestamps are milliseconds since the stream began, on the call's clock.
 */
export class TwilioProtocol implements WireProtocol {
  readonly name = 'twilio';
  readonly tracks: readonly StreamTrack[];
  readonly #d: StreamDescription;
  readonly #sid: string;
  readonly #sidJson: string;
  #sequence = 0;
  readonly #chunks = new Map<string, number>();
  #baseTs: number | null = null;

  constructor(d: StreamDescription) {
    this.#d = d;
    // Twilio's stream ids are MZ and 32 hex digits; ours are the same shape.
    this.#sid = d.streamId;
    this.#sidJson = JSON.stringify(d.streamId);
    const inbound = { track: 'inbound', source: 'caller', channels: 1 } as const;
    const outbound = { track: 'outbound', source: 'service', channels: 1 } as const;
    this.tracks = d.source === 'caller' ? [inbound] : d.source === 'service' ? [outbound] : d.source === 'stereo' ? [inbound, outbound] : [{ track: 'inbound', source: 'mixed', channels: 1 }];
  }

  #next(): string {
    return String(++this.#sequence);
  }

  opening(): string[] {
    const d = this.#d;
    return [
      JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }),
      JSON.stringify({
        event: 'start',
        sequenceNumber: this.#next(),
        start: {
          accountSid: d.tenantId,
          streamSid: this.#sid,
          callSid: d.callId,
          tracks: [...new Set(this.tracks.map((t) => t.track))],
          customParameters: d.customParameters,
          mediaFormat: { encoding: ENCODING_NAMES[d.encoding], sampleRate: d.sampleRate, channels: 1 },
        },
        streamSid: this.#sid,
      }),
    ];
  }

  media(track: StreamTrack, frame: ForkFrame): string {
    this.#baseTs ??= frame.rtpTimestamp;
    const chunk = (this.#chunks.get(track.track) ?? 0) + 1;
    this.#chunks.set(track.track, chunk);
    // The call's clock is 8 kHz: eight ticks a millisecond.
    const ms = Math.max(0, Math.round(((frame.rtpTimestamp - this.#baseTs) >>> 0) / 8));
    // Laid out by hand, 50 times a second per track: every value but the track (one of ours)
    // and the stream id (quoted once) is digits or base64, which JSON needs no escape for.
    return `{"event":"media","sequenceNumber":"${this.#next()}","media":{"track":"${track.track}","chunk":"${chunk}","timestamp":"${ms}","payload":"${frame.data.toString('base64')}"},"streamSid":${this.#sidJson}}`;
  }

  mark(name: string): string {
    return JSON.stringify({ event: 'mark', sequenceNumber: this.#next(), streamSid: this.#sid, mark: { name } });
  }

  dtmf(digit: string): string {
    return JSON.stringify({ event: 'dtmf', streamSid: this.#sid, sequenceNumber: this.#next(), dtmf: { track: 'inbound_track', digit } });
  }

  notice(): null {
    return null;
  }

  stop(): string {
    return JSON.stringify({ event: 'stop', sequenceNumber: this.#next(), streamSid: this.#sid, stop: { accountSid: this.#d.tenantId, callSid: this.#d.callId } });
  }

  parse(data: Buffer, binary: boolean): BackendMessage {
    if (binary) throw new ProtocolError(CLOSE.unsupportedData, 'the twilio protocol carries JSON text messages only');
    const m = parseJson(data);
    switch (m['event']) {
      case 'media': {
        const media = m['media'] as Record<string, unknown> | undefined;
        const payload = media?.['payload'];
        const data = typeof payload === 'string' ? decodeBase64(payload) : null;
        if (!data) throw new ProtocolError(CLOSE.invalidPayload, 'media.payload must be base64 audio');
        return { kind: 'audio', data };
      }
      case 'mark':
        return { kind: 'mark', name: markName((m['mark'] as Record<string, unknown> | undefined)?.['name']) };
      case 'clear':
        return { kind: 'clear' };
      default:
        if (typeof m['event'] !== 'string') throw new ProtocolError(CLOSE.invalidPayload, 'a message must have an event');
        return { kind: 'ignored', what: m['event'].slice(0, 32) };
    }
  }
}
