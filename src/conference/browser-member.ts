import type { types as ms } from 'mediasoup';
import type { Logger } from '../logging/logger.ts';
import type { FeedStats } from '../bridge/bridge-feed.ts';
import type { OpusInput } from './opus-input.ts';
import type { ConferenceMember } from './member.ts';

/**
 * A browser in a conference. Other browsers hear it through the SFU (its Opus forwarded,
 * never decoded); the phones hear it through the mix: its producer is consumed here and
 * played in through the same timeline and jitter feed a phone's audio goes through. It hears the phones as their
 * own tracks, so the mix gives it nothing. Muted: its producer is paused (nobody hears
 * it); deaf: its consumers are.
 */
export class BrowserMember implements ConferenceMember {
  readonly kind: 'browser' | 'test-leg';
  readonly callId = null;
  readonly displayName: string;
  readonly #consumer: ms.Consumer;
  readonly #producer: ms.Producer;
  readonly #input: OpusInput;
  readonly #peer: { consumers: Map<string, ms.Consumer> };
  readonly #kick: () => void;
  readonly #log: Logger;

  constructor(opts: { kind?: 'browser' | 'test-leg'; consumer: ms.Consumer; producer: ms.Producer; input: OpusInput; displayName: string; peer: { consumers: Map<string, ms.Consumer> }; kick: () => void; log: Logger }) {
    this.kind = opts.kind ?? 'browser';
    this.#consumer = opts.consumer;
    this.#producer = opts.producer;
    this.#input = opts.input;
    this.displayName = opts.displayName;
    this.#peer = opts.peer;
    this.#kick = opts.kick;
    this.#log = opts.log;
  }

  get stats(): FeedStats {
    return this.#input.stats;
  }

  take(): Int16Array | null {
    return this.#input.take();
  }

  hear(): void {}

  flush(): void {}

  detach(): void {
    this.#consumer.close();
  }

  setMuted(muted: boolean): void {
    (muted ? this.#producer.pause() : this.#producer.resume()).catch((error: unknown) => this.#log.warn({ event: 'CONFERENCE_MUTE_FAILED', error }, 'the browser could not be muted in the SFU'));
  }

  setDeaf(deaf: boolean): void {
    for (const c of this.#peer.consumers.values()) {
      (deaf ? c.pause() : c.resume()).catch(() => undefined);
    }
  }

  kick(): void {
    this.#kick();
  }
}
