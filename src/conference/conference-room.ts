import type { types as ms } from 'mediasoup';
import type { Logger } from '../logging/logger.ts';
import { OpusInput } from './opus-input.ts';
import { PcmuTrack } from '../rooms/pcmu-track.ts';
import type { Peer } from '../rooms/peer.ts';
import type { Room } from '../rooms/room.ts';
import { BrowserMember } from './browser-member.ts';
import type { Conference, ParticipantState } from './conference.ts';
import type { ConferenceMember } from './member.ts';
import type { ConferenceView } from '../signaling/contract.ts';

const VOICE_PEER = 'conference';

export interface LinkSettings {
  /**
   * A conference of the platform's: its own prompts and voices reach the browsers as one more
   * track, and the browsers see its participants; a moderator's request from a browser is
   * carried out as the gRPC one would be. A call's room has none of these.
   */
  platform?: { moderate: (participantId: string, c: { mute?: boolean; deaf?: boolean; kick?: boolean }) => void };
}

/**
 * A conference and a browser room, joined: a platform conference and the room of its id, or
 * a call's room and the mix of that call with its browsers. Browsers hear each other through
 * the SFU, each phone as its own PCMU track (its voice as heard by the mix, forwarded without
 * a codec), and a platform conference's own prompts and voices as one more track; the phones
 * hear every browser through the mix. Nobody's voice reaches anyone twice, and nobody hears
 * itself. The link ends with the room (its browsers leave the conference) or with the
 * conference (the room goes on as an SFU room).
 */
export class ConferenceRoomLink {
  readonly #room: Room;
  readonly #conference: Conference;
  readonly #transport: ms.DirectTransport;
  readonly #log: Logger;
  readonly #tracks = new Map<string, PcmuTrack>();
  readonly #pendingTracks = new Set<string>();
  readonly #browsers = new Set<string>();
  /** The conference's own voice track: a platform conference's only. */
  readonly #voice: PcmuTrack | null;
  readonly #platform: boolean;
  #closed = false;
  #unlisten: () => void = () => {};

  static async attach(room: Room, conference: Conference, settings: LinkSettings): Promise<ConferenceRoomLink> {
    const transport = await room.router.createDirectTransport({ maxMessageSize: 1500 });
    try {
      const voice = settings.platform ? await PcmuTrack.create(transport, { peerId: VOICE_PEER }) : null;
      const link = new ConferenceRoomLink(room, conference, transport, voice, settings);
      // A phone already in the mix gets its track before the link is answered.
      await Promise.all(conference.members().map(([id, member]) => link.#addPhone(id, member)));
      return link;
    } catch (error) {
      transport.close();
      throw error;
    }
  }

  private constructor(room: Room, conference: Conference, transport: ms.DirectTransport, voice: PcmuTrack | null, settings: LinkSettings) {
    this.#room = room;
    this.#conference = conference;
    this.#transport = transport;
    this.#voice = voice;
    this.#platform = settings.platform !== undefined;
    this.#log = room.log.child({ conference_id: conference.id });
    if (voice) {
      room.addServerParticipant({ peerId: VOICE_PEER, displayName: `conference ${conference.id}`, kind: 'conference' }, voice.producer, () => this.close('the room closed'));
      conference.voiceForwarder = (f) => voice.send(f);
    }
    conference.forwarder = (id, _m, f) => this.#tracks.get(id)?.send(f);
    const onJoined = (p: ParticipantState): void => {
      const m = conference.member(p.participantId);
      if (m) void this.#addPhone(p.participantId, m);
      this.#tell();
    };
    const onLeft = (p: ParticipantState): void => {
      this.#removePhone(p.participantId);
      this.#browsers.delete(p.participantId);
      this.#tell();
    };
    const onChange = (): void => this.#tell();
    const onEnd = (): void => this.close('the conference ended');
    conference.on('joined', onJoined);
    conference.on('left', onLeft);
    conference.on('talking', onChange);
    conference.on('changed', onChange);
    conference.on('close', onEnd);
    this.#unlisten = () => {
      conference.off('joined', onJoined);
      conference.off('left', onLeft);
      conference.off('talking', onChange);
      conference.off('changed', onChange);
      conference.off('close', onEnd);
    };
    const platform = settings.platform;
    if (platform) room.conference = { view: () => this.#view(), control: (id, c) => platform.moderate(id, c) };
    room.on('testLeg', (producer, peerId, name, stop) => void this.#addServer(producer, peerId, name, stop));
    room.on('audioProducer', (producer, peer) => void this.#addBrowser(producer, peer));
    room.on('close', () => this.close('the room closed'));
    for (const { producer, peer } of room.browserAudio()) void this.#addBrowser(producer, peer);
    if (platform) this.#log.info({ event: 'CONFERENCE_ROOM_LINKED', attributes: { 'room.id': room.id, 'conference.size': conference.size } }, 'browsers of the room are in the conference');
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unlisten();
    if (this.#platform) this.#room.conference = null;
    if (this.#conference.forwarder) this.#conference.forwarder = null;
    this.#conference.voiceForwarder = null;
    for (const id of this.#browsers) this.#conference.leave(id, 'removed');
    this.#browsers.clear();
    for (const id of [...this.#tracks.keys()]) this.#removePhone(id);
    if (this.#voice) this.#room.removeServerParticipant(VOICE_PEER);
    this.#transport.close();
    if (this.#platform) this.#log.info({ event: 'CONFERENCE_ROOM_UNLINKED', attributes: { reason } }, `browsers left the conference (${reason})`);
  }

  #view(): ConferenceView {
    return {
      conferenceId: this.#conference.id,
      participants: this.#conference.participants().map((p) => ({ participantId: p.participantId, kind: p.kind, displayName: p.displayName, callId: p.callId, muted: p.muted, deaf: p.deaf, talking: p.talking })),
    };
  }

  #tell(): void {
    if (!this.#closed && this.#platform) this.#room.broadcastConference(this.#view());
  }

  /** A test leg of a browser: it stands in for a phone, heard by the phones through the mix. */
  async #addServer(producer: ms.Producer, peerId: string, name: string, stop: () => void): Promise<void> {
    if (this.#closed) return;
    let consumer: ms.Consumer;
    try {
      consumer = await this.#transport.consume({ producerId: producer.id, rtpCapabilities: this.#room.router.rtpCapabilities });
    } catch {
      return;
    }
    if (this.#closed || producer.closed) {
      consumer.close();
      return;
    }
    const input = new OpusInput();
    consumer.on('rtp', (packet: Buffer) => input.push(packet));
    const leave = (): void => void this.#conference.leave(peerId, 'removed');
    consumer.on('producerclose', leave);
    consumer.on('transportclose', leave);
    try {
      this.#conference.join(peerId, () => new BrowserMember({ kind: 'test-leg', consumer, producer, input, displayName: name, peer: { consumers: new Map() }, kick: stop, log: this.#log }));
    } catch (error) {
      consumer.close();
      this.#log.warn({ event: 'CONFERENCE_TEST_LEG_REFUSED', error }, 'the test prompt could not join the conference');
    }
  }

  async #addPhone(id: string, member: ConferenceMember): Promise<void> {
    if (member.kind !== 'phone' || this.#tracks.has(id) || this.#pendingTracks.has(id)) return;
    this.#pendingTracks.add(id);
    let track: PcmuTrack;
    try {
      track = await PcmuTrack.create(this.#transport, { peerId: `phone-${id}` });
    } catch (error) {
      this.#pendingTracks.delete(id);
      if (!this.#closed) this.#log.warn({ event: 'CONFERENCE_TRACK_FAILED', error }, "a phone's track could not be made");
      return;
    }
    const gone = !this.#pendingTracks.delete(id) || this.#closed || !this.#conference.has(id);
    if (gone) {
      track.close();
      return;
    }
    this.#tracks.set(id, track);
    this.#room.addServerParticipant({ peerId: `phone-${id}`, displayName: `phone (${member.callId ?? id})`, kind: 'phone' }, track.producer, () => this.#removePhone(id));
  }

  #removePhone(id: string): void {
    this.#pendingTracks.delete(id);
    const track = this.#tracks.get(id);
    if (!track) return;
    this.#tracks.delete(id);
    track.close();
    this.#room.removeServerParticipant(`phone-${id}`);
  }

  async #addBrowser(producer: ms.Producer, peer: Peer): Promise<void> {
    if (this.#closed || this.#browsers.has(peer.id)) return;
    this.#browsers.add(peer.id);
    let consumer: ms.Consumer;
    try {
      consumer = await this.#transport.consume({ producerId: producer.id, rtpCapabilities: this.#room.router.rtpCapabilities });
    } catch (error) {
      this.#browsers.delete(peer.id);
      if (!this.#closed && !producer.closed) this.#log.warn({ event: 'CONFERENCE_BROWSER_FAILED', error }, 'the phones cannot hear this browser');
      return;
    }
    if (this.#closed || producer.closed || peer.closed) {
      consumer.close();
      this.#browsers.delete(peer.id);
      return;
    }
    const input = new OpusInput();
    consumer.on('rtp', (packet: Buffer) => input.push(packet));
    const leave = (): void => {
      if (this.#browsers.delete(peer.id)) this.#conference.leave(peer.id, 'removed');
    };
    consumer.on('producerclose', leave);
    consumer.on('transportclose', leave);
    try {
      this.#conference.join(
        peer.id,
        () => new BrowserMember({ consumer, producer, input, displayName: peer.displayName, peer, kick: () => this.#room.kick(peer.id, 'removed from the conference'), log: peer.log }),
      );
    } catch (error) {
      consumer.close();
      this.#browsers.delete(peer.id);
      this.#log.warn({ event: 'CONFERENCE_BROWSER_REFUSED', error, attributes: { 'peer.id': peer.id } }, 'the browser could not join the conference');
    }
  }
}
