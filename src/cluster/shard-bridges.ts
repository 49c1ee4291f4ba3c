import type { CallBridges } from '../bridge/call-bridges.ts';
import type { LinkMode, LinkPeer } from '../bridge/frame-link.ts';
import { RemoteBridgeEnd } from '../bridge/remote-bridge-end.ts';
import type { Conferences } from '../conference/conferences.ts';
import { MediaError } from '../errors/media-error.ts';
import type { SessionRegistry } from '../sessions/session-registry.ts';
import type { ConferenceSeat, ShardMessage, SupervisorMessage } from './messages.ts';

/** One half of a link across shards, as this shard holds it. */
interface Half {
  connect(peer: LinkPeer): void;
  close(release: boolean, cut: boolean): void;
}

/**
 * A shard's halves of bridges across shards (a call's half, or a seat in one of this
 * shard's conferences for a call another shard carries), opened and closed as the
 * supervisor says.
 */
export class ShardBridges {
  readonly #halves = new Map<string, Half>();
  readonly #send: (m: ShardMessage) => void;
  readonly #sessions: SessionRegistry;
  readonly #bridges: CallBridges;
  readonly #conferences: Conferences;
  /** Where halves whose other end is another machine bind: the address RTP binds. */
  readonly #networkBind: string;

  constructor(opts: { send: (m: ShardMessage) => void; sessions: SessionRegistry; bridges: CallBridges; conferences: Conferences; networkBind: string }) {
    this.#send = opts.send;
    this.#sessions = opts.sessions;
    this.#bridges = opts.bridges;
    this.#conferences = opts.conferences;
    this.#networkBind = opts.networkBind;
    const conferences = opts.conferences;
    conferences.on('ended', (conferenceId) => this.#send({ type: 'conference-ended', conferenceId }));
    // The supervisor keeps each conference's state for the process that follows this one.
    conferences.on('changed', (id) => {
      const snap = conferences.snapshot(id);
      if (snap) this.#send({ type: 'conference-state', conference: snap });
    });
    for (const conference of conferences.snapshots()) this.#send({ type: 'conference-state', conference });
  }

  handle(m: SupervisorMessage): void {
    switch (m.type) {
      case 'bridge-open': {
        const mode: LinkMode | undefined = m.network ? { kind: 'network', bind: this.#networkBind, role: m.network.role } : undefined;
        if (m.seat) void this.#seat(m.id, m.seat, Buffer.from(m.token, 'base64'), mode);
        else void this.#open(m.id, m.port, Buffer.from(m.token, 'base64'), m.peer, m.inConference, mode);
        return;
      }
      case 'bridge-connect':
        this.#halves.get(m.id)?.connect(m.peer);
        return;
      case 'bridge-close':
        this.#halves.get(m.id)?.close(m.release === true, m.cut === true);
    }
  }

  async #open(id: string, port: number, token: Buffer, peer: string, inConference: string | undefined, mode: LinkMode | undefined): Promise<void> {
    try {
      const session = this.#sessions.require(port);
      if (inConference && session.conferenceId !== null) throw new MediaError('failed_precondition', `the call on port ${port} is in conference ${session.conferenceId}; remove it there first`);
      const end = await RemoteBridgeEnd.open(session, token, peer, mode);
      try {
        this.#bridges.attachRemote(end);
      } catch (error) {
        end.close('unbridged');
        throw error;
      }
      if (inConference) session.conferenceId = inConference;
      this.#halves.set(id, {
        connect: (p) => end.connect(p),
        close: (release) => {
          end.close('unbridged');
          // Kicked from its conference: the call's media ends, as RemoveFromConference(kick) says.
          if (release) this.#sessions.release(port);
        },
      });
      end.on('close', (reason) => {
        if (inConference && session.conferenceId === inConference) session.conferenceId = null;
        this.#halves.delete(id);
        this.#send({ type: 'bridge-closed', id, reason });
      });
      this.#send({ type: 'bridge-opened', id, udpPort: end.udpPort });
    } catch (error) {
      this.#refuse(id, error);
    }
  }

  async #seat(id: string, seat: ConferenceSeat, token: Buffer, mode: LinkMode | undefined): Promise<void> {
    try {
      let open = true;
      const joined = await this.#conferences.addRemote(
        seat,
        token,
        (reason) => {
          if (!open) return;
          open = false;
          this.#halves.delete(id);
          this.#send({ type: 'bridge-closed', id, reason });
        },
        mode,
      );
      this.#halves.set(id, {
        connect: (p) => joined.connect(p),
        close: (_release, cut) => {
          // The call's side closed (it ended, or left, or its process died): the seat goes.
          open = false;
          this.#halves.delete(id);
          joined.leave(cut ? 'media_restarted' : 'call_ended');
        },
      });
      this.#send({ type: 'bridge-opened', id, udpPort: joined.udpPort, participant: joined.participant });
    } catch (error) {
      this.#refuse(id, error);
    }
  }

  #refuse(id: string, error: unknown): void {
    const e = error instanceof MediaError ? error : new MediaError('internal', 'the bridge could not be opened');
    this.#send({ type: 'bridge-refused', id, code: e.code, message: e.message });
  }
}
