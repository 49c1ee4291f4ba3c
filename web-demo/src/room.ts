// The contract carries mediasoup's (server) types; mediasoup-client declares the same wire
// objects with its own, slightly different, declarations: they are cast where they cross.

/**
 * One browser's membership of a room: the socket, the mediasoup-client Device, a send
 * transport with the microphone's producer and a receive transport with a consumer per
 * producer of the others. The UI (main.ts) only reads its state and calls its methods.
 */
import { Device } from 'mediasoup-client';
import type { Consumer, Producer, RtpCapabilities, RtpParameters, Transport, TransportOptions } from 'mediasoup-client/types';
import type { AudioLevel, ConferenceView, JoinResponse, PeerInfo, ProducerInfo } from '../../src/signaling/contract.ts';
import { connectSignaling, fetchDemoToken, request, SignalingError, type SignalingSocket } from './signaling.ts';
import { collectStats, type DemoStats } from './stats.ts';

export type RoomState = 'idle' | 'joining' | 'joined' | 'reconnecting' | 'closed';

export interface RemoteAudio {
  consumer: Consumer;
  producerId: string;
  peerId: string;
  element: HTMLAudioElement;
}

export interface PeerView extends PeerInfo {
  self: boolean;
  /** The peer's audio producers, and whether each is paused. */
  producers: Map<string, { paused: boolean }>;
}

export interface RoomEvents {
  /** Anything the page shows changed (state, peers, microphone, test leg). */
  change(): void;
  /** Levels arrived: cheap redraw of the meters only. */
  levels(): void;
  /** A line for the status bar; 'warn' lines are also console.warn'ed. */
  status(text: string, level: 'info' | 'warn'): void;
}

/** dBov of a producer absent from the latest audioLevels event. */
export const SILENCE_DB = -127;

export class RoomClient {
  state: RoomState = 'idle';
  roomId = '';
  peerId = '';
  displayName = '';
  callBridged = false;
  micOn = true;
  /** The test leg this page started, while it plays. */
  testLegPeerId: string | undefined;
  /** The room's conference, when it is one: its participants as the service last said. */
  conference: ConferenceView | null = null;
  /** This page's token may mute, deafen and kick the conference's participants. */
  moderator = false;
  readonly peers = new Map<string, PeerView>();
  /** Latest level per peer, dBov (-127 silent .. 0 loudest). */
  readonly levels = new Map<string, number>();
  readonly remote = new Map<string, RemoteAudio>();

  readonly #events: RoomEvents;
  readonly #audioParent: HTMLElement;
  #socket: SignalingSocket | undefined;
  #token = '';
  #roomAsked = '';
  #device: Device | undefined;
  #send: Transport | undefined;
  #recv: Transport | undefined;
  #mic: Producer | undefined;
  #micTrack: MediaStreamTrack | undefined;
  /** Producers announced while the receive transport is being made: consumed once it exists. */
  #pending: ProducerInfo[] = [];
  /** Bumped on every (re)entry and on leave: work of an older entry stops at its next step. */
  #epoch = 0;
  /** Settled by the first entry into the room (what join() waits for). */
  #firstEntry: PromiseWithResolvers<void> | undefined;
  readonly #consuming = new Set<string>();

  constructor(opts: { events: RoomEvents; audioParent: HTMLElement }) {
    this.#events = opts.events;
    this.#audioParent = opts.audioParent;
  }

  /** Resolves once in the room with the microphone set up; rejects with what went wrong. */
  async join(room: string, name: string): Promise<void> {
    if (this.state !== 'idle' && this.state !== 'closed') throw new Error(`cannot join while ${this.state}`);
    this.#setState('joining');
    this.#status(`joining room "${room}"…`);
    const entered = Promise.withResolvers<void>();
    this.#firstEntry = entered;
    try {
      const { token, path } = await fetchDemoToken(room, name);
      this.#token = token;
      this.#roomAsked = room;
      this.displayName = name;
      this.#socket = this.#openSocket(path);
    } catch (error) {
      this.#firstEntry = undefined;
      this.#warn(error);
      this.#teardown();
      this.#setState('closed');
      throw error;
    }
    return entered.promise;
  }

  async leave(): Promise<void> {
    const socket = this.#socket;
    if (!socket) return;
    this.#epoch++;
    if (socket.connected) {
      try {
        await request(socket, 'leave', {}, 3_000);
      } catch (error) {
        this.#warn(error);
      }
    }
    this.#teardown();
    this.#setState('closed');
    this.#status('left the room');
  }

  async setMic(on: boolean): Promise<void> {
    this.micOn = on;
    const producer = this.#mic;
    if (this.#micTrack) this.#micTrack.enabled = on;
    this.#events.change();
    if (!producer || producer.closed || !this.#socket) return;
    try {
      if (on) {
        producer.resume();
        await request(this.#socket, 'resumeProducer', { producerId: producer.id });
      } else {
        producer.pause();
        await request(this.#socket, 'pauseProducer', { producerId: producer.id });
      }
    } catch (error) {
      this.#warn(error);
    }
  }

  async startTestLeg(opts: { prompt?: string; loop?: boolean } = {}): Promise<string | undefined> {
    if (!this.#socket || this.state !== 'joined') return undefined;
    try {
      const { peerId } = await request(this.#socket, 'startTestLeg', opts);
      this.testLegPeerId = peerId;
      this.#status('test prompt playing');
      this.#events.change();
      return peerId;
    } catch (error) {
      this.#warn(error);
      return undefined;
    }
  }

  /** A moderator's control of a conference participant; answers whether the service did it. */
  async control(participantId: string, c: { mute?: boolean; deaf?: boolean; kick?: boolean }): Promise<boolean> {
    if (!this.#socket || this.state !== 'joined') return false;
    try {
      await request(this.#socket, 'conferenceControl', { participantId, ...c });
      return true;
    } catch (error) {
      this.#warn(error);
      return false;
    }
  }

  async stopTestLeg(): Promise<void> {
    if (!this.#socket || this.state !== 'joined') return;
    try {
      await request(this.#socket, 'stopTestLeg', {});
      this.testLegPeerId = undefined;
      this.#status('test prompt stopped');
      this.#events.change();
    } catch (error) {
      this.#warn(error);
    }
  }

  async stats(): Promise<DemoStats> {
    return collectStats(this.#mic, [...this.remote.values()]);
  }

  #openSocket(path: string): SignalingSocket {
    const socket = connectSignaling(path, this.#roomAsked);
    socket.on('connect', () => void this.#enter(socket));
    socket.on('connect_error', (error) => {
      if (this.#firstEntry) {
        // Never got in: give up rather than retry forever behind a "joining" page.
        this.#status(`cannot reach signaling: ${error.message}`, 'warn');
        this.#settleEntry(error);
        this.#teardown();
        this.#setState('closed');
        return;
      }
      // In the room before: socket.io retries by itself; the page says why it is not back yet.
      this.#status(`cannot reach signaling: ${error.message}`, 'warn');
    });
    socket.on('disconnect', (reason) => {
      if (this.#socket !== socket) return;
      this.#dropMedia();
      if (reason === 'io client disconnect') return;
      if (reason === 'io server disconnect') {
        // The server ended the session (room closed, kicked): socket.io does not retry.
        this.#teardown();
        this.#setState('closed');
        this.#status('disconnected by the service', 'warn');
        return;
      }
      this.#setState('reconnecting');
      this.#status(`connection lost (${reason}); reconnecting…`, 'warn');
    });
    socket.on('peerJoined', (peer) => {
      this.#addPeer(peer);
      this.#events.change();
    });
    socket.on('peerLeft', ({ peerId }) => {
      this.peers.delete(peerId);
      this.levels.delete(peerId);
      for (const r of [...this.remote.values()]) if (r.peerId === peerId) this.#closeRemote(r.consumer.id);
      if (this.testLegPeerId === peerId) this.testLegPeerId = undefined;
      this.#events.change();
    });
    socket.on('newProducer', (p) => {
      this.#noteProducer(p);
      this.#events.change();
      void this.#consume(p, this.#epoch);
    });
    socket.on('producerPaused', ({ producerId, paused }) => {
      for (const peer of this.peers.values()) if (peer.producers.has(producerId)) peer.producers.set(producerId, { paused });
      this.#events.change();
    });
    socket.on('producerClosed', ({ producerId }) => {
      for (const peer of this.peers.values()) peer.producers.delete(producerId);
      for (const r of [...this.remote.values()]) if (r.producerId === producerId) this.#closeRemote(r.consumer.id);
      if (this.#mic?.id === producerId) {
        this.#mic.close();
        this.#status('the service closed the microphone producer', 'warn');
      }
      this.#events.change();
    });
    socket.on('consumerClosed', ({ consumerId }) => {
      this.#closeRemote(consumerId);
      this.#events.change();
    });
    socket.on('audioLevels', (levels: AudioLevel[]) => {
      const loudest = new Map<string, number>();
      for (const l of levels) loudest.set(l.peerId, Math.max(loudest.get(l.peerId) ?? SILENCE_DB, l.volume));
      this.levels.clear();
      for (const peerId of this.peers.keys()) this.levels.set(peerId, loudest.get(peerId) ?? SILENCE_DB);
      this.#events.levels();
    });
    socket.on('conference', (view) => {
      this.conference = view;
      this.#events.change();
    });
    socket.on('roomClosed', ({ reason }) => {
      this.#teardown();
      this.#setState('closed');
      this.#status(`the room was closed: ${reason}`, 'warn');
    });
    return socket;
  }

  /** Join (or re-join after a reconnect) on a connected socket, then set up media. */
  async #enter(socket: SignalingSocket): Promise<void> {
    if (this.#socket !== socket) return;
    const epoch = ++this.#epoch;
    const stale = (): boolean => epoch !== this.#epoch || this.#socket !== socket;
    this.#dropMedia();
    this.#setState('joining');
    try {
      const joined = await request(socket, 'join', { roomId: this.#roomAsked, token: this.#token, displayName: this.displayName });
      if (stale()) return;
      this.#applyJoin(joined);
      const device = new Device();
      await device.load({ routerRtpCapabilities: joined.routerRtpCapabilities as unknown as RtpCapabilities });
      if (stale()) return;
      this.#device = device;
      this.#recv = await this.#createTransport(socket, device, 'recv');
      if (stale()) return;
      this.#setState('joined');
      this.#status(`in room "${joined.roomId}" as ${this.displayName}${joined.callBridged ? ' (bridged to a phone call)' : ''}`);
      const waiting = [...joined.producers, ...this.#pending];
      this.#pending = [];
      await Promise.all(waiting.filter((p) => p.peerId !== this.peerId).map((p) => this.#consume(p, epoch)));
      if (stale()) return;
      if (device.canProduce('audio')) await this.#startMic(socket, device, stale);
      else this.#status('this browser cannot send audio to the service', 'warn');
      if (!stale()) this.#settleEntry();
    } catch (error) {
      if (stale()) return;
      this.#warn(error);
      this.#settleEntry(error);
      if (this.state === 'joining') {
        this.#teardown();
        this.#setState('closed');
      }
    }
  }

  #settleEntry(error?: unknown): void {
    const entry = this.#firstEntry;
    this.#firstEntry = undefined;
    if (!entry) return;
    if (error === undefined) entry.resolve();
    else entry.reject(error instanceof Error ? error : new Error(String(error)));
  }

  #applyJoin(joined: JoinResponse): void {
    this.roomId = joined.roomId;
    this.peerId = joined.peerId;
    this.callBridged = joined.callBridged;
    this.conference = joined.conference ?? null;
    this.moderator = joined.moderator === true;
    this.peers.clear();
    this.levels.clear();
    for (const peer of joined.peers) this.#addPeer(peer);
    if (!this.peers.has(joined.peerId)) this.#addPeer({ peerId: joined.peerId, displayName: this.displayName, kind: 'browser' });
    for (const p of joined.producers) this.#noteProducer(p);
    this.#events.change();
  }

  async #createTransport(socket: SignalingSocket, device: Device, direction: 'send' | 'recv'): Promise<Transport> {
    const opts = await request(socket, 'createTransport', { direction });
    const options = opts as unknown as TransportOptions;
    const transport = direction === 'send' ? device.createSendTransport(options) : device.createRecvTransport(options);
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      request(socket, 'connectTransport', { transportId: transport.id, dtlsParameters }).then(() => callback(), (error: unknown) => {
        this.#warn(error);
        errback(error instanceof Error ? error : new Error(String(error)));
      });
    });
    if (direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters }, callback, errback) => {
        request(socket, 'produce', { transportId: transport.id, kind, rtpParameters }).then(({ producerId }) => callback({ id: producerId }), (error: unknown) => {
          this.#warn(error);
          errback(error instanceof Error ? error : new Error(String(error)));
        });
      });
    }
    transport.on('connectionstatechange', (state) => {
      if (state === 'failed' || state === 'disconnected') this.#status(`${direction} transport ${state}`, 'warn');
    });
    return transport;
  }

  async #startMic(socket: SignalingSocket, device: Device, stale: () => boolean): Promise<void> {
    let stream: MediaStream;
    try {
      // ?processing=0 turns Chromium's capture processing off (echo cancellation, noise
      // suppression, gain control): what is heard is then only what the service did.
      const raw = new URLSearchParams(location.search).get('processing') === '0';
      const audio = raw ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false } : true;
      stream = await navigator.mediaDevices.getUserMedia({ audio, video: false });
    } catch (error) {
      this.#status(`no microphone: ${error instanceof Error ? error.message : String(error)} (you can still listen)`, 'warn');
      return;
    }
    const track = stream.getAudioTracks()[0];
    if (!track || stale()) {
      for (const t of stream.getTracks()) t.stop();
      return;
    }
    this.#micTrack = track;
    this.#send = await this.#createTransport(socket, device, 'send');
    if (stale()) return;
    // A paused microphone before the producer existed stays paused.
    const producer = await this.#send.produce({ track, stopTracks: true, disableTrackOnPause: true, zeroRtpOnPause: true });
    if (stale()) {
      producer.close();
      return;
    }
    this.#mic = producer;
    this.#peerSelf()?.producers.set(producer.id, { paused: false });
    producer.on('trackended', () => this.#status('the microphone stopped', 'warn'));
    if (!this.micOn) await this.setMic(false);
    this.#events.change();
  }

  async #consume(p: ProducerInfo, epoch: number): Promise<void> {
    if (p.peerId === this.peerId || p.kind !== 'audio') return;
    const socket = this.#socket;
    const device = this.#device;
    const recv = this.#recv;
    if (!socket || !device || !recv || recv.closed) {
      if (epoch === this.#epoch) this.#pending.push(p);
      return;
    }
    if (this.#consuming.has(p.producerId) || [...this.remote.values()].some((r) => r.producerId === p.producerId)) return;
    this.#consuming.add(p.producerId);
    try {
      const c = await request(socket, 'consume', { transportId: recv.id, producerId: p.producerId, rtpCapabilities: device.recvRtpCapabilities });
      if (epoch !== this.#epoch || recv.closed) return;
      const consumer = await recv.consume({ id: c.consumerId, producerId: c.producerId, kind: c.kind, rtpParameters: c.rtpParameters as unknown as RtpParameters });
      const element = document.createElement('audio');
      element.autoplay = true;
      element.dataset['peerId'] = c.peerId;
      element.srcObject = new MediaStream([consumer.track]);
      this.#audioParent.append(element);
      this.remote.set(consumer.id, { consumer, producerId: c.producerId, peerId: c.peerId, element });
      consumer.on('trackended', () => this.#closeRemote(consumer.id));
      await request(socket, 'resumeConsumer', { consumerId: consumer.id });
      element.play().catch((error: unknown) => this.#status(`the browser blocked playback (${String(error)}): click anywhere on the page`, 'warn'));
      this.#events.change();
    } catch (error) {
      if (epoch === this.#epoch) this.#warn(error);
    } finally {
      this.#consuming.delete(p.producerId);
    }
  }

  #addPeer(peer: PeerInfo): void {
    const existing = this.peers.get(peer.peerId);
    this.peers.set(peer.peerId, { ...peer, self: peer.peerId === this.peerId, producers: existing?.producers ?? new Map() });
  }

  #noteProducer(p: ProducerInfo): void {
    if (!this.peers.has(p.peerId)) this.#addPeer({ peerId: p.peerId, displayName: p.peerId, kind: 'browser' });
    this.peers.get(p.peerId)!.producers.set(p.producerId, { paused: p.paused });
  }

  #peerSelf(): PeerView | undefined {
    return this.peers.get(this.peerId);
  }

  #closeRemote(consumerId: string): void {
    const r = this.remote.get(consumerId);
    if (!r) return;
    this.remote.delete(consumerId);
    r.consumer.close();
    r.element.srcObject = null;
    r.element.remove();
  }

  /** Closes transports, producers and consumers; the socket stays. */
  #dropMedia(): void {
    for (const id of [...this.remote.keys()]) this.#closeRemote(id);
    this.#mic?.close();
    this.#mic = undefined;
    this.#micTrack?.stop();
    this.#micTrack = undefined;
    this.#send?.close();
    this.#send = undefined;
    this.#recv?.close();
    this.#recv = undefined;
    this.#device = undefined;
    this.#pending = [];
    this.testLegPeerId = undefined;
  }

  #teardown(): void {
    this.#epoch++;
    this.#settleEntry(new Error('left the room before joining'));
    this.#dropMedia();
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
    this.peers.clear();
    this.levels.clear();
    this.peerId = '';
    this.roomId = '';
    this.callBridged = false;
  }

  #setState(state: RoomState): void {
    if (this.state === state) return;
    this.state = state;
    this.#events.change();
  }

  #status(text: string, level: 'info' | 'warn' = 'info'): void {
    this.#events.status(text, level);
  }

  /** Refusals and failures go to the status line and console.warn, never console.error. */
  #warn(error: unknown): void {
    const text = error instanceof SignalingError ? `${error.request} refused (${error.code}): ${error.detail}` : error instanceof Error ? error.message : String(error);
    this.#status(text, 'warn');
  }
}
