import { performance } from 'node:perf_hooks';
import { BridgeFeed, type FeedStats } from '../bridge/bridge-feed.ts';
import { OPUS_RTP_CLOCK, OpusFrameDecoder } from '../codecs/opus.ts';
import { InboundTimeline } from '../media-path/inbound-timeline.ts';
import { RtpClockMapper } from '../rtp-bridge/opus-leg.ts';
import { parseRtp } from '../rtp-bridge/rtp-packet.ts';

const RATE = 8000;

/**
 * A browser's (or a test prompt's) Opus as a conference input, through the same path a
 * phone's audio takes: each packet decoded at the mix's 8 kHz on arrival, put on a gap-free
 * timeline (reordering, loss and pauses concealed), then into the bridge's jitter feed. One
 * playout policy for every kind of participant.
 */
export class OpusInput {
  readonly #decoder = new OpusFrameDecoder({ sampleRate: RATE });
  readonly #clock = new RtpClockMapper(OPUS_RTP_CLOCK, RATE);
  readonly #timeline: InboundTimeline;
  readonly #feed = new BridgeFeed();
  /** Packets libopus refused (dropped, counted). */
  corrupt = 0;

  constructor() {
    this.#timeline = new InboundTimeline({ clockRate: RATE, onFrame: (f) => this.#feed.push(f) });
  }

  get stats(): FeedStats {
    return this.#feed.stats;
  }

  push(packet: Buffer): void {
    const h = parseRtp(packet);
    if (!h || h.payloadLength === 0) return;
    let pcm: Int16Array;
    try {
      pcm = this.#decoder.decode(packet.subarray(h.payloadOffset, h.payloadOffset + h.payloadLength));
    } catch {
      this.corrupt++;
      return;
    }
    this.#timeline.push(performance.now(), h.sequenceNumber, this.#clock.map(h.timestamp, h.ssrc), h.ssrc, pcm);
  }

  /** This tick's frame: overdue audio is concealed first, then the feed's policy plays. */
  take(nowMs = performance.now()): Int16Array | null {
    this.#timeline.tick(nowMs);
    return this.#feed.take();
  }
}
