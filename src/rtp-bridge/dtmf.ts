import { tsDelta } from './rtp-packet.ts';

/** RFC 4733 telephone-event: one digit per event, repeated packets share a timestamp. */
const EVENT_NAMES = '0123456789*#ABCD';

export interface DtmfDigit {
  digit: string;
  durationMs: number;
}

export function parseTelephoneEvent(payload: Uint8Array): { event: number; end: boolean; duration: number } | null {
  if (payload.length < 4) return null;
  return { event: payload[0]!, end: (payload[1]! & 0x80) !== 0, duration: (payload[2]! << 8) | payload[3]! };
}

/**
 * Reports each digit once: senders repeat every event packet and send the end packet
 * three times, all with the event's start timestamp. A digit whose end packets were all
 * lost is reported when the next event starts.
 */
export class DtmfDetector {
  readonly #clockRate: number;
  #currentTs: number | null = null;
  #current: { event: number; duration: number } | null = null;
  #reportedTs: number | null = null;

  constructor(clockRate = 8000) {
    this.#clockRate = clockRate;
  }

  /** Feeds one telephone-event packet; returns the digits completed by it, in order. */
  push(timestamp: number, payload: Uint8Array): DtmfDigit[] {
    const ev = parseTelephoneEvent(payload);
    if (!ev || ev.event >= EVENT_NAMES.length) return [];
    // A late packet of an earlier event (its third end packet, reordered): that digit was
    // reported or superseded already, and it must not restart the event now running.
    if (this.#currentTs !== null && tsDelta(timestamp, this.#currentTs) < 0) return [];
    const out: DtmfDigit[] = [];
    if (timestamp !== this.#currentTs) {
      if (this.#current && this.#currentTs !== this.#reportedTs) out.push(this.#digit(this.#current));
      this.#currentTs = timestamp;
      this.#current = null;
    }
    this.#current = { event: ev.event, duration: Math.max(ev.duration, this.#current?.duration ?? 0) };
    if (ev.end && this.#reportedTs !== timestamp) {
      this.#reportedTs = timestamp;
      out.push(this.#digit(this.#current));
    }
    return out;
  }

  #digit(c: { event: number; duration: number }): DtmfDigit {
    return { digit: EVENT_NAMES[c.event]!, durationMs: Math.round((c.duration * 1000) / this.#clockRate) };
  }
}
