import { BridgeFeed, type FeedStats } from '../bridge/bridge-feed.ts';
import type { FrameLink, LinkPeer } from '../bridge/frame-link.ts';
import type { ConferenceMember } from './member.ts';

/**
 * A phone call another shard carries, in this shard's conference: its caller frames arrive
 * over a frame link (from the call's half of the leg, a RemoteBridgeEnd) into the same
 * jitter-absorbing feed a local phone has, and what it hears goes back the same way, to be
 * played into the call's mix on its own shard.
 */
export class RemoteMember implements ConferenceMember {
  readonly kind = 'phone' as const;
  readonly callId: string;
  readonly #link: FrameLink;
  readonly #feed = new BridgeFeed();
  readonly #onDetach: () => void;
  #timestamp = 0;
  #heard: Int16Array | null = null;

  constructor(link: FrameLink, opts: { callId: string; onDetach: () => void }) {
    this.#link = link;
    this.callId = opts.callId;
    this.#onDetach = opts.onDetach;
  }

  get stats(): FeedStats {
    return this.#feed.stats;
  }

  get udpPort(): number {
    return this.#link.udpPort;
  }

  connect(peer: LinkPeer): void {
    this.#link.connect(peer, (f) => this.#feed.push(f));
  }

  take(): Int16Array | null {
    return this.#feed.take();
  }

  hear(frame: Int16Array | null): void {
    this.#heard = frame;
  }

  /** Sends what it hears now; nothing while it hears nothing (the other side plays silence). */
  flush(): void {
    const f = this.#heard;
    if (f) this.#link.send(f, this.#timestamp, false);
    this.#timestamp = (this.#timestamp + 160) >>> 0;
    this.#heard = null;
  }

  detach(): void {
    this.#link.close();
    this.#onDetach();
  }
}
