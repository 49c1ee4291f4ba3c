import { randomUUID } from 'node:crypto';
import type { types as ms } from 'mediasoup';
import { MediaError } from '../errors/media-error.ts';
import type { Logger } from '../logging/logger.ts';
import type { MediaClock } from '../media-path/clock.ts';
import type { Placement } from '../media-engine/worker-pool.ts';
import type { CallSession } from '../sessions/call-session.ts';
import type { AudioLevel, ConferenceView, ConsumeResponse, PeerInfo, ProducerInfo, ServerToClientEvents, TransportOptions } from '../signaling/contract.ts';
import { TypedEmitter } from '../util/typed-emitter.ts';
import { Conference } from '../conference/conference.ts';
import { CallTapMember } from '../conference/call-tap-member.ts';
import { ConferenceRoomLink } from '../conference/conference-room.ts';
import type { OpusSendSettings } from './opus-send-leg.ts';
import { webrtcQuality, type StreamStat, type WebRtcQuality } from '../quality/webrtc-quality.ts';
import { MAX_PRODUCERS_PER_PEER, MAX_TRANSPORTS_PER_PEER, Peer } from './peer.ts';
import { TestLeg } from './test-leg.ts';

export const ROUTER_CODECS: ms.RtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2, parameters: { useinbandfec: 1 } },
  // A conference's phones go to browsers as they are: every browser decodes PCMU.
  { kind: 'audio', mimeType: 'audio/PCMU', clockRate: 8000 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
];

const LEVEL_INTERVAL_MS = 250;

/** What a room that is a conference's offers its browsers: the view, and moderation. */
export interface RoomConference {
  view(): ConferenceView;
  control(participantId: string, c: { mute?: boolean; deaf?: boolean; kick?: boolean }): void;
}

/** A producer and who owns it: a browser, the phone, or a test leg. */
interface RoomProducer {
  producer: ms.Producer;
  peerId: string;
}

interface ServerPeer {
  info: PeerInfo;
  close(reason: string): void;
}

/** A room as /debug/rooms shows it: its peers, and its router's objects as the worker counts them. */
export interface RoomResources {
  id: string;
  call: boolean;
  worker: number;
  browsers: number;
  /** The phone and test prompts: each one a running Opus encoder on a DirectTransport. */
  serverLegs: number;
  transports: number;
  producers: number;
  consumers: number;
  /**
   * The same as this process holds them: browsers' transports plus one DirectTransport per
   * server leg, every producer, browsers' consumers. Off from the worker's: something here
   * outlived its mediasoup object, or the other way round.
   */
  tracked: { transports: number; producers: number; consumers: number };
}

/** The part of mediasoup 3.12's router.dump() that is counted. */
interface RouterDump {
  transportIds: string[];
  mapProducerIdConsumerIds: Record<string, string[]>;
  mapConsumerIdProducerId: Record<string, string>;
}

export interface RoomOptions {
  id: string;
  /** The room's place on a worker; the room owns it from here and gives it back when it ends. */
  placement: Placement;
  call: CallSession | undefined;
  clock: MediaClock;
  settings: OpusSendSettings;
  maxPeers: number;
  log: Logger;
}

/**
 * One room on one router. It owns the router and everything in it: browser peers, the
 * phone's leg when the room is a call, test legs, and the level observer. Closing the room
 * (last browser left, the call ended, the worker died, shutdown) closes all of it once.
 */
export class Room extends TypedEmitter<{ close: [reason: string]; audioProducer: [producer: ms.Producer, peer: Peer]; testLeg: [producer: ms.Producer, peerId: string, name: string, stop: () => void] }> {
  readonly id: string;
  readonly router: ms.Router;
  readonly log: Logger;
  readonly #placement: Placement;
  readonly #clock: MediaClock;
  readonly #settings: OpusSendSettings;
  readonly #maxPeers: number;
  readonly #observer: ms.AudioLevelObserver;
  readonly #peers = new Map<string, Peer>();
  readonly #serverPeers = new Map<string, ServerPeer>();
  readonly #producers = new Map<string, RoomProducer>();
  /** A call's room: the call and the room's browsers in one mix of their own. */
  #call: { mix: Conference; link: ConferenceRoomLink } | null = null;
  #closed = false;
  /** The conference this room is part of (see ConferenceRoomLink), set by the link. */
  conference: RoomConference | null = null;

  static async create(opts: RoomOptions): Promise<Room> {
    const { pooled } = opts.placement;
    let router: ms.Router | undefined;
    let room: Room | undefined;
    try {
      if (!pooled.webRtcServer) throw new MediaError('unavailable', 'WebRTC is not enabled on this service');
      router = await pooled.worker.createRouter({ mediaCodecs: ROUTER_CODECS, appData: { room: opts.id } });
      const observer = await router.createAudioLevelObserver({ maxEntries: 16, threshold: -70, interval: LEVEL_INTERVAL_MS });
      room = new Room(opts, router, observer);
      if (opts.call) await room.#attachCall(opts.call);
      return room;
    } catch (error) {
      // Every way out that is not a room gives the worker its place back.
      if (room) room.close('it could not be set up');
      else router?.close();
      opts.placement.release();
      throw error;
    }
  }

  private constructor(opts: RoomOptions, router: ms.Router, observer: ms.AudioLevelObserver) {
    super(opts.log);
    this.id = opts.id;
    this.router = router;
    this.log = opts.log;
    this.#placement = opts.placement;
    this.#clock = opts.clock;
    this.#settings = opts.settings;
    this.#maxPeers = opts.maxPeers;
    this.#observer = observer;
    router.on('workerclose', () => this.close('the media worker died'));
    observer.on('volumes', (volumes) => this.#broadcast('audioLevels', volumes.map((v) => this.#level(v.producer, v.volume))));
    observer.on('silence', () => this.#broadcast('audioLevels', []));
  }

  get closed(): boolean {
    return this.#closed;
  }

  get callBridged(): boolean {
    return this.#call !== null;
  }

  get browserCount(): number {
    return this.#peers.size;
  }

  /** What this room holds, counted by the worker itself: a leak shows even when no map holds it. */
  async resources(): Promise<RoomResources> {
    let transports = this.#serverPeers.size;
    let consumers = 0;
    for (const p of this.#peers.values()) {
      transports += p.transports.size;
      consumers += p.consumers.size;
    }
    const tracked = { transports, producers: this.#producers.size, consumers };
    const base = { id: this.id, call: this.callBridged, browsers: this.#peers.size, serverLegs: this.#serverPeers.size, worker: this.#placement.pooled.index, tracked };
    if (this.#closed) return { ...base, transports: 0, producers: 0, consumers: 0 };
    const dump = (await this.router.dump().catch(() => undefined)) as RouterDump | undefined;
    return {
      ...base,
      transports: dump?.transportIds.length ?? 0,
      producers: Object.keys(dump?.mapProducerIdConsumerIds ?? {}).length,
      consumers: Object.keys(dump?.mapConsumerIdProducerId ?? {}).length,
    };
  }

  /** Each browser's audio, as mediasoup measures it: what it sends, what it is sent, the round trip. */
  async quality(): Promise<WebRtcQuality[]> {
    const stats = (x: { getStats(): Promise<unknown[]>; closed: boolean; kind: string }): Promise<StreamStat[]> =>
      x.closed || x.kind !== 'audio' ? Promise.resolve([]) : x.getStats().then((s) => s as StreamStat[], () => []);
    return Promise.all(
      [...this.#peers.values()].map(async (p) => {
        const [sent, received] = await Promise.all([Promise.all([...p.producers.values()].map(stats)), Promise.all([...p.consumers.values()].map(stats))]);
        return webrtcQuality(p, sent.flat(), received.flat());
      }),
    );
  }

  peers(): PeerInfo[] {
    return [...[...this.#peers.values()].map((p) => p.info), ...[...this.#serverPeers.values()].map((s) => s.info)];
  }

  producers(exceptPeerId?: string): ProducerInfo[] {
    const out: ProducerInfo[] = [];
    for (const { producer, peerId } of this.#producers.values()) {
      if (peerId !== exceptPeerId) out.push({ producerId: producer.id, peerId, kind: producer.kind, paused: producer.paused });
    }
    return out;
  }

  join(peer: Peer): void {
    this.#assertOpen();
    if (this.#peers.size >= this.#maxPeers) throw new MediaError('resource_exhausted', `room ${this.id} is full (${this.#maxPeers} participants)`);
    this.#broadcast('peerJoined', peer.info);
    this.#peers.set(peer.id, peer);
  }

  /** A browser left (or disconnected): everything it had goes; an empty room closes. */
  leave(peer: Peer): void {
    if (!this.#peers.delete(peer.id)) return;
    for (const id of peer.producers.keys()) this.#producers.delete(id);
    peer.close();
    this.#broadcast('peerLeft', { peerId: peer.id });
    if (this.#peers.size === 0) this.close('the last participant left');
  }

  async createTransport(peer: Peer, direction: 'send' | 'recv'): Promise<TransportOptions> {
    this.#assertOpen();
    if (peer.transports.size + peer.pending.transports >= MAX_TRANSPORTS_PER_PEER) throw new MediaError('resource_exhausted', `at most ${MAX_TRANSPORTS_PER_PEER} transports per participant`);
    peer.pending.transports++;
    let transport: ms.WebRtcTransport;
    try {
      transport = await this.router.createWebRtcTransport({
        webRtcServer: this.#placement.pooled.webRtcServer!,
        enableUdp: true,
        enableTcp: true,
        preferUdp: true,
        appData: { peerId: peer.id, direction },
      });
    } catch (error) {
      throw this.#gone(peer) ?? error;
    } finally {
      peer.pending.transports--;
    }
    if (peer.closed) {
      transport.close();
      throw left();
    }
    peer.transports.set(transport.id, transport);
    transport.on('dtlsstatechange', (state) => {
      if (state === 'failed' || state === 'closed') peer.log.warn({ event: 'WEBRTC_DTLS_STATE', attributes: { 'webrtc.transport': transport.id, 'webrtc.dtls_state': state } }, `DTLS ${state}`);
    });
    return { id: transport.id, iceParameters: transport.iceParameters, iceCandidates: transport.iceCandidates, dtlsParameters: transport.dtlsParameters };
  }

  async connectTransport(peer: Peer, transportId: string, dtlsParameters: ms.DtlsParameters): Promise<void> {
    const transport = this.#transport(peer, transportId);
    try {
      await transport.connect({ dtlsParameters });
    } catch (error) {
      throw new MediaError('invalid_argument', `cannot connect the transport: ${(error as Error).message}`, { cause: error });
    }
  }

  async produce(peer: Peer, transportId: string, kind: ms.MediaKind, rtpParameters: ms.RtpParameters): Promise<string> {
    const transport = this.#transport(peer, transportId);
    if (peer.producers.size + peer.pending.producers >= MAX_PRODUCERS_PER_PEER) throw new MediaError('resource_exhausted', `at most ${MAX_PRODUCERS_PER_PEER} producers per participant`);
    peer.pending.producers++;
    let producer: ms.Producer;
    try {
      producer = await transport.produce({ kind, rtpParameters, appData: { peerId: peer.id } });
    } catch (error) {
      throw this.#gone(peer) ?? new MediaError('invalid_argument', `cannot produce: ${(error as Error).message}`, { cause: error });
    } finally {
      peer.pending.producers--;
    }
    // A transport closed while the worker made the producer never closes it: mediasoup
    // adds the producer to a transport that has already let go of its producers.
    if (peer.closed || transport.closed) {
      producer.close();
      throw left();
    }
    peer.producers.set(producer.id, producer);
    this.#addProducer(producer, peer.id);
    producer.on('transportclose', () => this.#removeProducer(producer.id));
    if (kind === 'audio') this.safeEmit('audioProducer', producer, peer);
    return producer.id;
  }

  closeProducer(peer: Peer, producerId: string): void {
    const producer = this.#ownProducer(peer, producerId);
    peer.producers.delete(producerId);
    producer.close();
    this.#removeProducer(producerId);
  }

  async setProducerPaused(peer: Peer, producerId: string, paused: boolean): Promise<void> {
    const producer = this.#ownProducer(peer, producerId);
    try {
      if (paused) await producer.pause();
      else await producer.resume();
    } catch (error) {
      throw this.#gone(peer) ?? (producer.closed ? new MediaError('not_found', `producer ${producerId} has closed`) : error);
    }
    if (!producer.closed) this.#broadcast('producerPaused', { producerId, paused }, peer.id);
  }

  async consume(peer: Peer, transportId: string, producerId: string, rtpCapabilities: ms.RtpCapabilities): Promise<ConsumeResponse> {
    const transport = this.#transport(peer, transportId);
    const owner = this.#producers.get(producerId);
    if (!owner) throw new MediaError('not_found', `no producer ${producerId} in this room`);
    if (owner.peerId === peer.id) throw new MediaError('invalid_argument', 'a participant does not consume its own producer');
    if (peer.consuming.has(producerId)) throw new MediaError('failed_precondition', `this participant already consumes producer ${producerId}`);
    if (!this.router.canConsume({ producerId, rtpCapabilities })) throw new MediaError('failed_precondition', 'these RTP capabilities cannot receive that producer');
    peer.consuming.add(producerId);
    let consumer: ms.Consumer;
    try {
      consumer = await transport.consume({ producerId, rtpCapabilities, paused: true, appData: { peerId: peer.id } });
    } catch (error) {
      peer.consuming.delete(producerId);
      throw this.#gone(peer) ?? (this.#producers.has(producerId) ? error : new MediaError('not_found', `producer ${producerId} has closed`));
    }
    // A producer that closed while the worker made the consumer: mediasoup can deliver the
    // close before the consumer object exists, so it would never hear of it.
    if (peer.closed || transport.closed || consumer.closed || !this.#producers.has(producerId)) {
      consumer.close();
      peer.consuming.delete(producerId);
      throw peer.closed || transport.closed ? left() : new MediaError('not_found', `producer ${producerId} has closed`);
    }
    peer.consumers.set(consumer.id, consumer);
    const gone = (): void => {
      peer.consuming.delete(producerId);
      if (!peer.consumers.delete(consumer.id)) return;
      peer.notify('consumerClosed', { consumerId: consumer.id, producerId });
    };
    consumer.on('producerclose', gone);
    consumer.on('transportclose', () => {
      peer.consuming.delete(producerId);
      peer.consumers.delete(consumer.id);
    });
    return { consumerId: consumer.id, producerId, peerId: owner.peerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters };
  }

  async setConsumerPaused(peer: Peer, consumerId: string, paused: boolean): Promise<void> {
    const consumer = peer.consumers.get(consumerId);
    if (!consumer) throw new MediaError('not_found', `no consumer ${consumerId} of this participant`);
    try {
      if (paused) await consumer.pause();
      else await consumer.resume();
    } catch (error) {
      throw this.#gone(peer) ?? (consumer.closed ? new MediaError('not_found', `consumer ${consumerId} has closed`) : error);
    }
  }

  /** A prompt played into the room by a server-side participant owned by `peer`. */
  async startTestLeg(peer: Peer, pcm: Int16Array, loop: boolean): Promise<string> {
    this.#assertOpen();
    if (peer.testLeg || peer.pending.testLeg) throw new MediaError('failed_precondition', 'this participant already plays a test leg');
    const peerId = `test-${randomUUID().slice(0, 8)}`;
    peer.pending.testLeg = true;
    let leg: TestLeg;
    try {
      leg = await TestLeg.create({ router: this.router, clock: this.#clock, pcm, loop, peerId, complexity: this.#settings.complexity, bitrate: this.#settings.bitrate });
    } catch (error) {
      throw this.#gone(peer) ?? error;
    } finally {
      peer.pending.testLeg = false;
    }
    if (peer.closed || this.#closed) {
      leg.close('its browser left');
      throw left();
    }
    peer.testLeg = leg;
    this.#addServerPeer({ peerId, displayName: `test prompt (${peer.displayName})`, kind: 'test-leg' }, leg.send.producer, (reason) => leg.close(reason));
    this.safeEmit('testLeg', leg.send.producer, peerId, `test prompt (${peer.displayName})`, () => leg.close('removed from the conference'));
    leg.on('close', () => {
      if (peer.testLeg === leg) peer.testLeg = null;
      this.#removeServerPeer(peerId);
    });
    return peerId;
  }

  stopTestLeg(peer: Peer): void {
    if (!peer.testLeg) throw new MediaError('failed_precondition', 'no test leg is playing');
    peer.testLeg.close('stopped');
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.log.info({ event: 'ROOM_CLOSED', attributes: { 'room.id': this.id, reason } }, `room closed: ${reason}`);
    this.#broadcast('roomClosed', { reason });
    for (const p of this.#peers.values()) p.close();
    this.#peers.clear();
    for (const s of [...this.#serverPeers.values()]) s.close(reason);
    this.#serverPeers.clear();
    this.#call?.mix.close('ended');
    this.#producers.clear();
    this.router.close();
    this.#placement.release();
    this.safeEmit('close', reason);
    this.removeAllListeners();
  }

  /**
   * A call's room: the call (tapped, never driven: it keeps its own clock, bridge or
   * conference) and the room's browsers and test prompts in one mix of their own. Browsers
   * hear the phone's party and what the service plays to it as one PCMU track; the call hears
   * every browser through the mix.
   */
  async #attachCall(session: CallSession): Promise<void> {
    const mix = new Conference({
      id: `room-${this.id}`,
      traceId: session.traceId,
      tenantId: session.tenantId,
      // Every browser, a test prompt of each, and the phone.
      maxParticipants: this.#maxPeers * 2 + 1,
      gateOnTalking: false,
      talk: { thresholdDbfs: -45, holdMs: 500 },
      endWhenEmpty: false,
      clock: this.#clock,
      log: session.log,
    });
    const opened = performance.now();
    mix.on('close', () => {
      session.log.info({ event: 'CALL_LEG_CLOSED', attributes: { 'rtp.port': session.port, 'call_leg.duration_ms': Math.round(performance.now() - opened) } }, 'phone left the room');
    });
    mix.join(String(session.port), () => new CallTapMember(session, { callEnded: () => this.close('the call ended') }));
    let link: ConferenceRoomLink;
    try {
      link = await ConferenceRoomLink.attach(this, mix, {});
    } catch (error) {
      mix.close('ended');
      if (session.closed) throw callEnded(session);
      throw new MediaError('unavailable', 'the call cannot be bridged into the room', { cause: error });
    }
    // A call that ended while its leg was made never tells the leg: the room would outlive it.
    if (session.closed || this.#closed) {
      link.close('the call ended');
      mix.close('ended');
      throw callEnded(session);
    }
    this.#call = { mix, link };
  }

  /** Browsers' audio producers now, with their browser (a conference attached later reads them). */
  browserAudio(): { producer: ms.Producer; peer: Peer }[] {
    const out: { producer: ms.Producer; peer: Peer }[] = [];
    for (const peer of this.#peers.values()) for (const p of peer.producers.values()) if (p.kind === 'audio' && !p.closed) out.push({ producer: p, peer });
    return out;
  }

  /** A participant the service itself sends into the room (a conference's phones and voice). */
  addServerParticipant(info: PeerInfo, producer: ms.Producer, close: (reason: string) => void): void {
    this.#assertOpen();
    this.#addServerPeer(info, producer, close);
  }

  removeServerParticipant(peerId: string): void {
    this.#removeServerPeer(peerId);
  }

  /** Removes a browser: it is told why, and its connection ends. */
  kick(peerId: string, reason: string): boolean {
    const peer = this.#peers.get(peerId);
    if (!peer) return false;
    peer.notify('roomClosed', { reason });
    this.leave(peer);
    peer.disconnect();
    return true;
  }

  #addServerPeer(info: PeerInfo, producer: ms.Producer, close: (reason: string) => void): void {
    this.#serverPeers.set(info.peerId, { info, close });
    this.#broadcast('peerJoined', info);
    this.#addProducer(producer, info.peerId);
  }

  #removeServerPeer(peerId: string): void {
    if (!this.#serverPeers.delete(peerId)) return;
    for (const [id, p] of this.#producers) if (p.peerId === peerId) this.#removeProducer(id);
    this.#broadcast('peerLeft', { peerId });
  }

  #addProducer(producer: ms.Producer, peerId: string): void {
    this.#producers.set(producer.id, { producer, peerId });
    if (producer.kind === 'audio') this.#observer.addProducer({ producerId: producer.id }).catch(() => undefined);
    this.#broadcast('newProducer', { producerId: producer.id, peerId, kind: producer.kind, paused: producer.paused }, peerId);
  }

  #removeProducer(producerId: string): void {
    const p = this.#producers.get(producerId);
    if (!p) return;
    this.#producers.delete(producerId);
    this.#broadcast('producerClosed', { producerId }, p.peerId);
  }

  #level(producer: ms.Producer, volume: number): AudioLevel {
    return { peerId: this.#producers.get(producer.id)?.peerId ?? '', producerId: producer.id, volume };
  }

  #transport(peer: Peer, transportId: string): ms.WebRtcTransport {
    const t = peer.transports.get(transportId);
    if (!t) throw new MediaError('not_found', `no transport ${transportId} of this participant`);
    return t;
  }

  #ownProducer(peer: Peer, producerId: string): ms.Producer {
    const p = peer.producers.get(producerId);
    if (!p) throw new MediaError('not_found', `no producer ${producerId} of this participant`);
    return p;
  }

  /** The error to answer when the participant or the room went away during a request. */
  #gone(peer: Peer): MediaError | undefined {
    if (peer.closed) return left();
    if (this.#closed) return new MediaError('failed_precondition', `room ${this.id} has closed`);
    return undefined;
  }

  #assertOpen(): void {
    if (this.#closed) throw new MediaError('failed_precondition', `room ${this.id} has closed`);
  }

  /** Tells every browser the conference's participants now. */
  broadcastConference(view: ConferenceView): void {
    this.#broadcast('conference', view);
  }

  #broadcast<K extends 'peerJoined' | 'peerLeft' | 'newProducer' | 'producerPaused' | 'producerClosed' | 'audioLevels' | 'roomClosed' | 'conference'>(
    event: K,
    payload: Parameters<ServerToClientEvents[K]>[0],
    exceptPeerId?: string,
  ): void {
    for (const p of this.#peers.values()) if (p.id !== exceptPeerId) (p.notify as (e: K, x: typeof payload) => void)(event, payload);
  }
}

const callEnded = (session: CallSession): MediaError => new MediaError('not_found', `the call ${session.callId} has ended`);
const left = (): MediaError => new MediaError('failed_precondition', 'the participant left');
