import type { types as ms } from 'mediasoup';
import type { Logger } from '../logging/logger.ts';
import type { PeerInfo, ServerToClientEvents } from '../signaling/contract.ts';
import type { TestLeg } from './test-leg.ts';

export type Notify = <K extends keyof ServerToClientEvents>(event: K, ...args: Parameters<ServerToClientEvents[K]>) => void;

export const MAX_TRANSPORTS_PER_PEER = 4;
export const MAX_PRODUCERS_PER_PEER = 4;

/** A browser in a room. It owns its transports; closing them closes its producers and consumers. */
export class Peer {
  readonly id: string;
  readonly displayName: string;
  readonly log: Logger;
  readonly notify: Notify;
  /** Ends the browser's connection (it was removed). */
  readonly disconnect: () => void;
  readonly transports = new Map<string, ms.WebRtcTransport>();
  readonly producers = new Map<string, ms.Producer>();
  readonly consumers = new Map<string, ms.Consumer>();
  testLeg: TestLeg | null = null;
  /** Requests still being served count against the limits, so a burst of them cannot pass one. */
  readonly pending = { transports: 0, producers: 0, testLeg: false };
  /** Producers this participant consumes, or is about to: one consumer each. */
  readonly consuming = new Set<string>();
  #closed = false;

  constructor(opts: { id: string; displayName: string; log: Logger; notify: Notify; disconnect?: () => void }) {
    this.id = opts.id;
    this.displayName = opts.displayName;
    this.log = opts.log;
    this.notify = opts.notify;
    this.disconnect = opts.disconnect ?? (() => {});
  }

  get info(): PeerInfo {
    return { peerId: this.id, displayName: this.displayName, kind: 'browser' };
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.testLeg?.close('its browser left');
    for (const t of this.transports.values()) t.close();
    this.transports.clear();
    this.producers.clear();
    this.consumers.clear();
    this.consuming.clear();
  }
}
