import { performance } from 'node:perf_hooks';
import type { CallSession, CallTap, CloseReason } from '../sessions/call-session.ts';
import { TypedEmitter } from '../util/typed-emitter.ts';
import { BridgeFeed, type FeedStats } from './bridge-feed.ts';
import type { BridgeCloseReason } from './call-bridge.ts';
import { FrameLink, type LinkMode, type LinkPeer } from './frame-link.ts';

/**
 * This shard's half of a bridge whose other side another shard carries (a call, or a
 * conference the call is in). The local call's caller frames go to the other half over a
 * frame link; what the other side says arrives the same way and plays into the local mix
 * through the same jitter-absorbing feed a bridge within one shard uses.
 */
export class RemoteBridgeEnd extends TypedEmitter<{ close: [BridgeCloseReason] }> {
  readonly session: CallSession;
  readonly createdAtMs = performance.now();
  readonly #link: FrameLink;
  readonly #feed = new BridgeFeed();
  readonly #tap: CallTap;
  readonly #peerLabel: string;
  #closed = false;

  private constructor(session: CallSession, link: FrameLink, peerLabel: string) {
    super(session.log);
    this.session = session;
    this.#link = link;
    this.#peerLabel = peerLabel;
    this.#tap = {
      inbound: (f) => this.#link.send(f.samples, f.timestamp, f.concealed),
      callClosed: (reason: CloseReason) => this.close(reason === 'shutdown' ? 'shutdown' : 'call_closed'),
    };
  }

  /** Binds this half's socket; frames flow once `connect` names the other half's port. */
  static async open(session: CallSession, token: Buffer, peerLabel: string, mode?: LinkMode): Promise<RemoteBridgeEnd> {
    return new RemoteBridgeEnd(session, await FrameLink.open(token, mode), peerLabel);
  }

  get udpPort(): number {
    return this.#link.udpPort;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Frames to the other call (none counted here: the other half counts what it plays), from it. */
  get stats(): { aToB: FeedStats; bToA: FeedStats } {
    return { aToB: { frames: this.#link.sent, dropped: 0, trimmed: 0, underruns: 0 }, bToA: this.#feed.stats };
  }

  connect(peer: LinkPeer): void {
    if (this.#closed || this.#link.connected) return;
    this.#link.connect(peer, (f) => this.#feed.push(f));
    this.session.addTap(this.#tap);
    this.session.addSource(this.#feed);
    this.session.log.info(
      { event: 'BRIDGE_CREATED', attributes: { 'rtp.port': this.session.port, 'bridge.peer': this.#peerLabel, 'bridge.across_shards': true } },
      `bridged to ${this.#peerLabel}`,
    );
  }

  close(reason: BridgeCloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.session.removeTap(this.#tap);
    this.session.removeSource(this.#feed);
    this.#link.close();
    const f = this.#feed.stats;
    this.session.log.info(
      {
        event: 'BRIDGE_CLOSED',
        attributes: {
          'rtp.port': this.session.port,
          'bridge.peer': this.#peerLabel,
          reason,
          'bridge.duration_ms': Math.round(performance.now() - this.createdAtMs),
          'bridge.sent': this.#link.sent,
          'bridge.received': `${f.frames}/${f.dropped}/${f.trimmed}/${f.underruns}`,
          'bridge.refused': this.#link.refused,
        },
      },
      `bridge closed (${reason})`,
    );
    this.safeEmit('close', reason);
    this.removeAllListeners();
  }
}
