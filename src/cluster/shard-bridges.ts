import type { CallBridges } from '../bridge/call-bridges.ts';
import { RemoteBridgeEnd } from '../bridge/remote-bridge-end.ts';
import { MediaError } from '../errors/media-error.ts';
import type { SessionRegistry } from '../sessions/session-registry.ts';
import type { ShardMessage, SupervisorMessage } from './messages.ts';

/** A shard's halves of bridges across shards, opened and closed as the supervisor says. */
export class ShardBridges {
  readonly #ends = new Map<string, RemoteBridgeEnd>();
  readonly #send: (m: ShardMessage) => void;
  readonly #sessions: SessionRegistry;
  readonly #bridges: CallBridges;

  constructor(opts: { send: (m: ShardMessage) => void; sessions: SessionRegistry; bridges: CallBridges }) {
    this.#send = opts.send;
    this.#sessions = opts.sessions;
    this.#bridges = opts.bridges;
  }

  handle(m: SupervisorMessage): void {
    switch (m.type) {
      case 'bridge-open':
        void this.#open(m.id, m.port, Buffer.from(m.token, 'base64'), m.peer);
        return;
      case 'bridge-connect':
        this.#ends.get(m.id)?.connect(m.peerPort);
        return;
      case 'bridge-close':
        this.#ends.get(m.id)?.close('unbridged');
    }
  }

  async #open(id: string, port: number, token: Buffer, peer: string): Promise<void> {
    try {
      const session = this.#sessions.require(port);
      const end = await RemoteBridgeEnd.open(session, token, peer);
      try {
        this.#bridges.attachRemote(end);
      } catch (error) {
        end.close('unbridged');
        throw error;
      }
      this.#ends.set(id, end);
      end.on('close', (reason) => {
        this.#ends.delete(id);
        this.#send({ type: 'bridge-closed', id, reason });
      });
      this.#send({ type: 'bridge-opened', id, udpPort: end.udpPort });
    } catch (error) {
      const e = error instanceof MediaError ? error : new MediaError('internal', 'the bridge could not be opened');
      this.#send({ type: 'bridge-refused', id, code: e.code, message: e.message });
    }
  }
}
