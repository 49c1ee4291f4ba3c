import { performance } from 'node:perf_hooks';
import { encodeG711 } from '../codecs/g711.ts';
import { MediaError } from '../errors/media-error.ts';
import type { Logger } from '../logging/logger.ts';
import type { Clocked, MediaClock } from '../media-path/clock.ts';
import { PlaybackQueue, type PlaybackEnd, type QueuedPrompt } from '../playback/playback-queue.ts';
import { FRAME_SAMPLES } from '../sessions/call-session.ts';
import { TypedEmitter } from '../util/typed-emitter.ts';
import { ConferenceMix } from './conference-mix.ts';
import { ParticipantTrack, TapGate } from './participant-track.ts';
import type { ConferenceMember, LeaveReason, MemberKind } from './member.ts';
import { gainFactor, MixMinus, saturate } from './mix-minus.ts';
import { TalkDetector, type TalkSettings } from './talk-detector.ts';

export interface ParticipantState {
  participantId: string;
  kind: MemberKind;
  callId: string;
  displayName: string;
  muted: boolean;
  deaf: boolean;
  gainDb: number;
  talking: boolean;
  /** The last frame's level, dBFS (-127 for silence). */
  levelDbfs: number;
  joinedAtUnixMs: number;
}

export interface ParticipantControl {
  muted?: boolean;
  deaf?: boolean;
  gainDb?: number;
}

export type ConferenceEndReason = 'ended' | 'empty' | 'shutdown';

export type ConferenceEvents = {
  joined: [ParticipantState];
  left: [ParticipantState, LeaveReason];
  /** `atUnixMs`: when the frame that changed it was mixed. */
  talking: [ParticipantState, boolean, number];
  /** Muted, deaf or gain changed. */
  changed: [ParticipantState];
  promptEnded: [QueuedPrompt, PlaybackEnd];
  close: [ConferenceEndReason];
};

export interface ConferenceOptions {
  id: string;
  traceId: string;
  tenantId: string;
  maxParticipants: number;
  /** Mix only participants who are talking (their frames reach the threshold, with hold). */
  gateOnTalking: boolean;
  talk: TalkSettings;
  /** An empty conference ends when its last participant leaves (once anyone joined). */
  endWhenEmpty: boolean;
  clock: MediaClock;
  log: Logger;
}

/** A member and what the conference knows of it. */
interface Seat {
  id: string;
  member: ConferenceMember;
  muted: boolean;
  deaf: boolean;
  gainDb: number;
  gain: number;
  talk: TalkDetector;
  /** This tick's scaled contribution (valid while `contributed`). */
  own: Int32Array;
  contributed: boolean;
  out: Int16Array;
  joinedAtUnixMs: number;
}

/**
 * One mixing domain. It owns its members and the conference's own prompts, runs once per
 * 20 ms on the service clock, and on every tick: takes each member's input frame, forms
 * the total of everyone who is heard, gives each talker the total minus itself and everyone
 * else one shared frame (encoded once per codec), then has every phone send at once. Ending
 * the conference takes every member out of it in one cascade; their calls carry on.
 */
export class Conference extends TypedEmitter<ConferenceEvents> implements Clocked {
  readonly id: string;
  readonly log: Logger;
  readonly createdAtMs = performance.now();
  readonly playback: PlaybackQueue;
  /** The whole mix, for recorders and forks, and what injected audio speaks into. */
  readonly mix: ConferenceMix;
  readonly #o: ConferenceOptions;
  readonly #seats = new Map<string, Seat>();
  readonly #mix = new MixMinus(FRAME_SAMPLES);
  readonly #spoken = new Int32Array(FRAME_SAMPLES);
  readonly #encoded = { PCMU: new Uint8Array(FRAME_SAMPLES), PCMA: new Uint8Array(FRAME_SAMPLES) };
  /** The tick each codec's shared frame was last encoded on. */
  readonly #encodedAt = { PCMU: -1, PCMA: -1 };
  #ticks = 0;
  /** Input feed figures of members who left. */
  readonly #leftFeeds = { dropped: 0, trimmed: 0, underruns: 0 };
  #sharedEncodes = 0;
  #everJoined = false;
  /**
   * Each tick, every member's input as heard (null: not heard: silent, muted, or nothing
   * came): a room forwards phones' voices to its browsers as they are.
   */
  forwarder: ((id: string, member: ConferenceMember, frame: Int16Array | null) => void) | null = null;
  /** Each tick, what the conference itself says to everyone (prompts, injected voices), or null. */
  voiceForwarder: ((frame: Int16Array | null) => void) | null = null;
  readonly #voice = new Int16Array(FRAME_SAMPLES);
  /** Listeners of the mix and the tracks that start on one tick (see TapGate). */
  readonly gate = new TapGate();
  /** Participants' own tracks, made when something wants to record them. */
  readonly #tracks = new Map<string, ParticipantTrack>();
  #closed = false;

  constructor(opts: ConferenceOptions) {
    super(opts.log);
    this.id = opts.id;
    this.log = opts.log;
    this.#o = opts;
    this.playback = new PlaybackQueue({ onEnd: (p, end) => this.safeEmit('promptEnded', p, end) });
    this.mix = new ConferenceMix({ conferenceId: opts.id, traceId: opts.traceId, tenantId: opts.tenantId, log: opts.log, gate: this.gate });
    this.mix.addSource(this.playback);
    opts.clock.add(this);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get size(): number {
    return this.#seats.size;
  }

  /** Times a shared frame was encoded (once per codec per tick at most, however many hear it). */
  get sharedEncodes(): number {
    return this.#sharedEncodes;
  }

  /** The members of one kind, by participant id. */
  /** A participant's own track (made on first use; it ends when the participant leaves). */
  trackOf(id: string): ParticipantTrack {
    if (!this.#seats.has(id)) throw new MediaError('not_found', `no participant ${id} in conference ${this.id}`);
    let t = this.#tracks.get(id);
    if (!t) {
      t = new ParticipantTrack({ name: `${this.id}.${id}`, traceId: this.#o.traceId, tenantId: this.#o.tenantId, log: this.log, gate: this.gate });
      this.#tracks.set(id, t);
    }
    return t;
  }

  /** The participant tracks made so far. */
  tracks(): ParticipantTrack[] {
    return [...this.#tracks.values()];
  }

  members(): [string, ConferenceMember][] {
    return [...this.#seats.values()].map((s) => [s.id, s.member]);
  }

  /** Input feeds of every member that ever was here: frames dropped (a burst), trimmed (delay given back), underruns. */
  feedTotals(): { dropped: number; trimmed: number; underruns: number } {
    const t = { ...this.#leftFeeds };
    for (const s of this.#seats.values()) {
      const st = s.member.stats;
      if (!st) continue;
      t.dropped += st.dropped;
      t.trimmed += st.trimmed;
      t.underruns += st.underruns;
    }
    return t;
  }

  /** Adds a member; `make` builds it once the seat is sure (it gets the shared-frame encoder). */
  join(id: string, make: (encodedShared: (codec: 'PCMU' | 'PCMA') => Uint8Array) => ConferenceMember, control: ParticipantControl = {}): ParticipantState {
    if (this.#closed) throw new MediaError('failed_precondition', `conference ${this.id} has ended`);
    if (this.#seats.has(id)) throw new MediaError('already_exists', `participant ${id} is already in conference ${this.id}`);
    if (this.#seats.size >= this.#o.maxParticipants) throw new MediaError('resource_exhausted', `conference ${this.id} is full (${this.#o.maxParticipants} participants)`);
    const gainDb = control.gainDb ?? 0;
    const seat: Seat = {
      id,
      member: make((codec) => this.#sharedEncoded(codec)),
      muted: control.muted ?? false,
      deaf: control.deaf ?? false,
      gainDb,
      gain: gainFactor(gainDb),
      talk: new TalkDetector(this.#o.talk),
      own: new Int32Array(FRAME_SAMPLES),
      contributed: false,
      out: new Int16Array(FRAME_SAMPLES),
      joinedAtUnixMs: Date.now(),
    };
    this.#seats.set(id, seat);
    this.#everJoined = true;
    const state = stateOf(seat);
    this.safeEmit('joined', state);
    return state;
  }

  has(id: string): boolean {
    return this.#seats.has(id);
  }

  /** The participant id of the member for which `match` holds. */
  find(match: (m: ConferenceMember) => boolean): string | undefined {
    for (const s of this.#seats.values()) if (match(s.member)) return s.id;
    return undefined;
  }

  member(id: string): ConferenceMember | undefined {
    return this.#seats.get(id)?.member;
  }

  /** Takes a member out; false when it is not (or no longer) here. */
  leave(id: string, reason: LeaveReason): boolean {
    const seat = this.#seats.get(id);
    if (!seat) return false;
    this.#seats.delete(id);
    seat.member.detach();
    this.#tracks.get(id)?.close('released');
    this.#tracks.delete(id);
    const st = seat.member.stats;
    if (st) {
      this.#leftFeeds.dropped += st.dropped;
      this.#leftFeeds.trimmed += st.trimmed;
      this.#leftFeeds.underruns += st.underruns;
    }
    this.safeEmit('left', stateOf(seat), reason);
    if (!this.#closed && this.#seats.size === 0 && this.#everJoined && this.#o.endWhenEmpty) this.close('empty');
    return true;
  }

  control(id: string, c: ParticipantControl): ParticipantState {
    const seat = this.#seats.get(id);
    if (!seat) throw new MediaError('not_found', `no participant ${id} in conference ${this.id}`);
    if (c.muted !== undefined) {
      seat.muted = c.muted;
      seat.member.setMuted?.(c.muted);
    }
    if (c.deaf !== undefined) {
      seat.deaf = c.deaf;
      seat.member.setDeaf?.(c.deaf);
    }
    if (c.gainDb !== undefined) {
      seat.gainDb = c.gainDb;
      seat.gain = gainFactor(c.gainDb);
    }
    const state = stateOf(seat);
    this.safeEmit('changed', state);
    return state;
  }

  participants(): ParticipantState[] {
    return [...this.#seats.values()].map(stateOf);
  }

  tick(nowMs: number): void {
    this.#ticks++;
    this.gate.admit();
    const mix = this.#mix;
    mix.begin();
    const atUnixMs = performance.timeOrigin + nowMs;
    for (const seat of this.#seats.values()) {
      const f = seat.member.take();
      const change = seat.talk.update(f);
      if (change) this.safeEmit('talking', stateOf(seat), change === 'started', atUnixMs);
      seat.contributed = f !== null && !seat.muted && (!this.#o.gateOnTalking || seat.talk.talking);
      if (seat.contributed) mix.add(f!, seat.gain, seat.own);
      this.forwarder?.(seat.id, seat.member, seat.contributed ? f : null);
      if (this.#tracks.size > 0) this.#tracks.get(seat.id)?.deliver(seat.contributed ? f : null);
    }
    // Prompts and injected voices: everyone hears them, nobody is left out of them.
    const spoken = this.#spoken;
    spoken.fill(0);
    let said = false;
    for (const s of this.mix.sources) if (s.mixInto(spoken)) said = true;
    if (said) mix.addScaled(spoken);
    if (this.voiceForwarder) {
      if (said) saturate(spoken, this.#voice);
      this.voiceForwarder(said ? this.#voice : null);
    }
    const any = mix.finish();
    this.mix.deliver(any ? mix.shared : null);
    for (const seat of this.#seats.values()) {
      if (seat.deaf || !any) seat.member.hear(null, false);
      else if (!seat.contributed) seat.member.hear(mix.shared, true);
      else seat.member.hear(mix.minus(seat.own, seat.out) ? seat.out : null, false);
    }
    for (const seat of this.#seats.values()) seat.member.flush(nowMs);
  }

  close(reason: ConferenceEndReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.clock.remove(this);
    this.playback.stop();
    for (const id of [...this.#seats.keys()]) this.leave(id, 'conference_ended');
    this.mix.close(reason === 'shutdown' ? 'shutdown' : 'released');
    this.log.info(
      { event: 'CONFERENCE_ENDED', attributes: { 'conference.id': this.id, reason, 'conference.duration_ms': Math.round(performance.now() - this.createdAtMs), 'conference.shared_encodes': this.#sharedEncodes } },
      `conference ended (${reason})`,
    );
    this.safeEmit('close', reason);
    this.removeAllListeners();
  }

  #sharedEncoded(codec: 'PCMU' | 'PCMA'): Uint8Array {
    if (this.#encodedAt[codec] !== this.#ticks) {
      encodeG711(codec, this.#mix.shared, this.#encoded[codec]);
      this.#encodedAt[codec] = this.#ticks;
      this.#sharedEncodes++;
    }
    return this.#encoded[codec];
  }
}

function stateOf(s: Seat): ParticipantState {
  return {
    participantId: s.id,
    kind: s.member.kind,
    callId: s.member.callId ?? '',
    displayName: s.member.displayName ?? '',
    muted: s.muted,
    deaf: s.deaf,
    gainDb: s.gainDb,
    talking: s.talk.talking,
    levelDbfs: Number.isFinite(s.talk.level) ? Math.max(-127, Math.round(s.talk.level)) : -127,
    joinedAtUnixMs: s.joinedAtUnixMs,
  };
}
