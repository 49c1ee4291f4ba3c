import { performance } from 'node:perf_hooks';
import { Gauge } from 'prom-client';
import type { CallBridges } from '../bridge/call-bridges.ts';
import type { Config } from '../config/schema.ts';
import { MediaError } from '../errors/media-error.ts';
import { genericEvent, type EventPublisher } from '../events/types.ts';
import type { Logging } from '../logging/logger.ts';
import type { MediaClock } from '../media-path/clock.ts';
import { METRIC_PREFIX, scrapedCounter, type Metrics } from '../metrics/metrics.ts';
import { parseAudioUri } from '../playback/audio-uri.ts';
import type { PromptLoader } from '../playback/prompt-loader.ts';
import type { CallSession } from '../sessions/call-session.ts';
import { CALL_RATE } from '../sessions/call-session.ts';
import { Conference, type ParticipantControl, type ParticipantState } from './conference.ts';
import type { LeaveReason } from './member.ts';
import { PhoneMember } from './phone-member.ts';
import type { ConferenceMix } from './conference-mix.ts';
import type { RecordingManager, StartRecordingRequest } from '../recording/recording-manager.ts';
import type { TapHost } from '../sessions/media-host.ts';
import { RemoteMember } from './remote-member.ts';
import type { ConferenceSnapshot } from './conference-snapshot.ts';
import { FrameLink, type LinkMode, type LinkPeer } from '../bridge/frame-link.ts';
import type { ConferenceSeat } from '../cluster/messages.ts';
import { TypedEmitter } from '../util/typed-emitter.ts';

export interface CreateConference {
  id: string;
  traceId: string;
  tenantId: string;
  maxParticipants: number;
  endWhenEmpty: boolean;
  /** Mix everyone with audio, not only those above the talk threshold. */
  mixAll: boolean;
  talkThresholdDbfs?: number;
  talkHoldMs?: number;
}

export interface ConferencesDeps {
  config: Readonly<Config>;
  clock: MediaClock;
  logging: Logging;
  events: EventPublisher;
  prompts: PromptLoader;
  bridges: CallBridges;
  recordings: RecordingManager;
  /** Ends a kicked participant's call, as ReleasePort would. */
  release: (s: CallSession) => void;
  metrics: Metrics;
}

interface Entry {
  conference: Conference;
  create: CreateConference;
  /** Its phones are being joined again after a restart: no events, no tones for them. */
  restoring: boolean;
  traceId: string;
  tenantId: string;
  maxParticipants: number;
  /** A recording with one track per participant is running: joiners get theirs too. */
  tracks: StartRecordingRequest | null;
}

export interface ConferenceInfo {
  conferenceId: string;
  maxParticipants: number;
  createdAtUnixMs: number;
  participants: ParticipantState[];
}

/**
 * Every conference of this process by id: made and ended here, and the one place that turns
 * their happenings into platform events and metrics. A call is in at most one conference,
 * and never in a conference and a bridge at once (it would hear the other side twice).
 */
export class Conferences extends TypedEmitter<{ ended: [conferenceId: string]; changed: [conferenceId: string] }> {
  readonly #byId = new Map<string, Entry>();
  readonly #o: ConferencesDeps;
  readonly #createdAtUnix = new Map<string, number>();
  /** Seats of calls other shards carry: told how their participant left. */
  readonly #remote = new Map<string, (reason: LeaveReason) => void>();
  #closedSharedEncodes = 0;
  readonly #closedFeeds = { dropped: 0, trimmed: 0, underruns: 0 };
  #closed = false;

  constructor(opts: ConferencesDeps) {
    super(opts.logging.process);
    this.#o = opts;
    const byId = this.#byId;
    const registers = [opts.metrics.registry];
    new Gauge({
      name: `${METRIC_PREFIX}conferences_active`,
      help: 'Conferences running',
      registers,
      collect() {
        this.set(byId.size);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}conference_participants`,
      help: 'Participants of every running conference',
      registers,
      collect() {
        let n = 0;
        for (const e of byId.values()) n += e.conference.size;
        this.set(n);
      },
    });
    const feeds = (key: 'dropped' | 'trimmed' | 'underruns'): number => {
      let n = this.#closedFeeds[key];
      for (const e of byId.values()) n += e.conference.feedTotals()[key];
      return n;
    };
    scrapedCounter(opts.metrics.registry, 'conference_frames_dropped_total', "Participants' 20 ms frames dropped because more arrived at once than the jitter feed holds", () => feeds('dropped'));
    scrapedCounter(opts.metrics.registry, 'conference_frames_trimmed_total', "Participants' 20 ms frames dropped to give back delay their jitter had built", () => feeds('trimmed'));
    scrapedCounter(opts.metrics.registry, 'conference_underruns_total', 'Ticks a talking participant had no frame (a packet later than the jitter margin)', () => feeds('underruns'));
    scrapedCounter(opts.metrics.registry, 'conference_shared_encodes_total', 'Frames encoded once for every conference listener who was not talking', () => {
      let n = this.#closedSharedEncodes;
      for (const e of byId.values()) n += e.conference.sharedEncodes;
      return n;
    });
  }

  get size(): number {
    return this.#byId.size;
  }

  create(req: CreateConference): ConferenceInfo {
    if (this.#closed) throw new MediaError('unavailable', 'the service is stopping');
    const c = this.#o.config.conference;
    if (this.#byId.has(req.id)) throw new MediaError('already_exists', `conference ${req.id} already exists`);
    if (this.#byId.size >= c.max_conferences) throw new MediaError('resource_exhausted', `this service holds ${c.max_conferences} conferences already`);
    const max = req.maxParticipants || c.max_participants;
    if (max > c.max_participants) throw new MediaError('invalid_argument', `max_participants must be at most ${c.max_participants}, got ${max}`);
    const log = this.#o.logging.forContext({ trace_id: req.traceId, call_id: null }).child({ conference_id: req.id });
    const conference = new Conference({
      id: req.id,
      traceId: req.traceId,
      tenantId: req.tenantId,
      maxParticipants: max,
      endWhenEmpty: req.endWhenEmpty,
      gateOnTalking: !req.mixAll,
      talk: { thresholdDbfs: req.talkThresholdDbfs ?? c.talk_threshold_dbfs, holdMs: req.talkHoldMs ?? c.talk_hold_ms },
      clock: this.#o.clock,
      log,
    });
    const entry: Entry = { conference, create: { ...req, maxParticipants: max }, restoring: false, traceId: req.traceId, tenantId: req.tenantId, maxParticipants: max, tracks: null };
    this.#byId.set(req.id, entry);
    this.#createdAtUnix.set(req.id, Date.now());
    this.#wire(entry);
    log.info({ event: 'CONFERENCE_CREATED', attributes: { 'conference.id': req.id, 'conference.max_participants': max, 'conference.mix_all': req.mixAll } }, 'conference created');
    this.safeEmit('changed', req.id);
    return this.info(req.id);
  }

  /** What a restarted process needs to make the conference again; undefined once it ended. */
  snapshot(id: string): ConferenceSnapshot | undefined {
    const e = this.#byId.get(id);
    if (!e) return undefined;
    const phones = e.conference.participants().flatMap((p) => {
      const m = e.conference.member(p.participantId);
      const remote = m instanceof RemoteMember;
      if (!remote && !(m instanceof PhoneMember)) return [];
      return [{ participantId: p.participantId, callId: p.callId, muted: p.muted, deaf: p.deaf, gainDb: p.gainDb, remote }];
    });
    return { create: e.create, createdAtUnixMs: this.#createdAtUnix.get(id) ?? Date.now(), phones };
  }

  snapshots(): ConferenceSnapshot[] {
    return [...this.#byId.keys()].map((id) => this.snapshot(id)!);
  }

  /**
   * Makes a conference of the previous process again, with those of its phones whose calls
   * this process carried on, set as they were; phones of other processes are joined again
   * by whoever joined them. Its participants hear no join tones and the platform no joins.
   */
  restore(snap: ConferenceSnapshot, callOf: (callId: string) => CallSession | undefined): number {
    this.create(snap.create);
    this.#createdAtUnix.set(snap.create.id, snap.createdAtUnixMs);
    const entry = this.#byId.get(snap.create.id)!;
    let joined = 0;
    entry.restoring = true;
    try {
      for (const p of snap.phones) {
        const session = p.remote ? undefined : callOf(p.callId);
        if (!session) continue;
        try {
          this.addCall(snap.create.id, session, p.participantId, { muted: p.muted, deaf: p.deaf, gainDb: p.gainDb });
          joined++;
        } catch (error) {
          entry.conference.log.warn({ event: 'CONFERENCE_RESTORE_FAILED', error, attributes: { 'conference.participant': p.participantId } }, 'a participant could not join again');
        }
      }
    } finally {
      entry.restoring = false;
    }
    const waiting = snap.phones.filter((p) => p.remote).length;
    entry.conference.log.info(
      { event: 'CONFERENCE_RESTORED', attributes: { 'conference.id': snap.create.id, 'conference.participants': joined, 'conference.remote_waiting': waiting, 'conference.lost': snap.phones.length - joined - waiting } },
      'conference of the previous process made again',
    );
    // Nobody to come back: an empty conference that ends when empty ends now.
    if (joined + waiting === 0 && snap.phones.length > 0 && snap.create.endWhenEmpty) entry.conference.close('empty');
    return joined;
  }

  info(id: string): ConferenceInfo {
    const e = this.#require(id);
    return { conferenceId: id, maxParticipants: e.maxParticipants, createdAtUnixMs: this.#createdAtUnix.get(id) ?? 0, participants: e.conference.participants() };
  }

  end(id: string): void {
    this.#require(id).conference.close('ended');
  }

  /** Adds a call; its participant id is `participantId` or the call's id. */
  addCall(id: string, session: CallSession, participantId: string, control: ParticipantControl): ParticipantState {
    const { conference } = this.#require(id);
    if (session.closed) throw new MediaError('not_found', `no call session on port ${session.port}`);
    if (session.conferenceId === id) throw new MediaError('already_exists', `the call on port ${session.port} is already in conference ${id}`);
    if (session.conferenceId !== null) throw new MediaError('failed_precondition', `the call on port ${session.port} is in conference ${session.conferenceId}; remove it there first`);
    if (this.#o.bridges.of(session)) throw new MediaError('failed_precondition', `the call on port ${session.port} is bridged; unbridge it before it joins a conference`);
    const pid = participantId || session.callId;
    return conference.join(
      pid,
      (encodedShared) =>
        new PhoneMember(session, {
          conferenceId: id,
          encodedShared,
          callEnded: () => conference.leave(pid, 'call_ended'),
        }),
      control,
    );
  }

  /**
   * A seat for a call another shard carries, joined over a frame link; `left` hears how it
   * left (a kick also ends the call's media, over there).
   */
  async addRemote(
    seat: ConferenceSeat,
    token: Buffer,
    left: (reason: LeaveReason) => void,
    mode?: LinkMode,
  ): Promise<{ udpPort: number; participant: ParticipantState; connect(peer: LinkPeer): void; leave(reason: LeaveReason): void }> {
    const { conference } = this.#require(seat.conferenceId);
    const pid = seat.participantId || seat.callId;
    if (conference.has(pid)) throw new MediaError('already_exists', `participant ${pid} is already in conference ${seat.conferenceId}`);
    const link = await FrameLink.open(token, mode);
    let member: RemoteMember | undefined;
    const key = `${seat.conferenceId}\u0000${pid}`;
    try {
      const participant = conference.join(pid, () => (member = new RemoteMember(link, { callId: seat.callId, onDetach: () => undefined })), { muted: seat.muted, deaf: seat.deaf, gainDb: seat.gainDb });
      this.#remote.set(key, (reason) => {
        this.#remote.delete(key);
        left(reason);
      });
      return { udpPort: link.udpPort, participant, connect: (peer) => member!.connect(peer), leave: (reason) => conference.leave(pid, reason) };
    } catch (error) {
      link.close();
      throw error;
    }
  }

  remove(id: string, participantId: string, kick: boolean): void {
    const { conference } = this.#require(id);
    const member = conference.member(participantId);
    if (!member) throw new MediaError('not_found', `no participant ${participantId} in conference ${id}`);
    conference.leave(participantId, kick ? 'kicked' : 'removed');
    // Kicked: its leg ends too (the platform hears call.media.session.closed and hangs up).
    if (kick && member instanceof PhoneMember) this.#o.release(member.session);
    else if (kick) member.kick?.();
  }

  control(id: string, participantId: string, c: ParticipantControl): ParticipantState {
    return this.#require(id).conference.control(participantId, c);
  }

  /** A prompt for everyone (participantId empty) or for one phone participant. */
  async play(id: string, uri: string, participantId: string, traceId: string): Promise<string> {
    const { conference } = this.#require(id);
    const parsed = parseAudioUri(uri, { maxDataBytes: this.#o.config.playback.data_uri_max_bytes });
    let queue = conference.playback;
    if (participantId) {
      const m = conference.member(participantId);
      if (!m) throw new MediaError('not_found', `no participant ${participantId} in conference ${id}`);
      if (!(m instanceof PhoneMember)) throw new MediaError('failed_precondition', `participant ${participantId} is not a phone call; prompts play to phones`);
      queue = m.session.playback;
    }
    if (parsed.kind === 'control') {
      if (parsed.action !== 'stop_playback') throw new MediaError('invalid_argument', `${uri} does not apply to a conference; only control://stop_playback does`);
      return `stopped ${queue.stop()} prompt(s)`;
    }
    const pcm = await this.#o.prompts.load(parsed);
    if (conference.closed) throw new MediaError('not_found', `conference ${id} ended while its prompt was loading`);
    if (!queue.enqueue(uri, traceId, pcm)) throw new MediaError('resource_exhausted', 'too many prompts queued');
    return `playing ${Math.round((pcm.length * 1000) / CALL_RATE)} ms${queue.length > 1 ? ` behind ${queue.length - 1} prompt(s)` : ''}`;
  }

  get(id: string): Conference | undefined {
    return this.#byId.get(id)?.conference;
  }

  /**
   * Records the whole mix and, with `tracks`, one file per participant beside it
   * (`<prefix>/<date>/<conference>.<participant>.wav`): all of them start on one tick, so
   * they line up sample for sample; a participant who joins later gets its track from then on.
   */
  async startRecording(id: string, req: StartRecordingRequest, tracks: boolean): Promise<void> {
    const entry = this.#require(id);
    const { conference } = entry;
    const recordings = this.#o.recordings;
    if (!tracks) {
      await recordings.start(conference.mix, req);
      return;
    }
    if (!req.outputUri.endsWith('/')) throw new MediaError('invalid_argument', 'participant_tracks needs an output_uri prefix ending in / (each track is its own file)');
    const started: TapHost[] = [];
    conference.gate.held = true;
    try {
      await recordings.start(conference.mix, req);
      started.push(conference.mix);
      for (const [pid] of conference.members()) {
        const track = conference.trackOf(pid);
        await recordings.start(track, { ...req, callId: track.callId });
        started.push(track);
      }
      entry.tracks = req;
    } catch (error) {
      for (const h of started) await recordings.stop(h).catch(() => undefined);
      throw error;
    } finally {
      conference.gate.held = false;
    }
  }

  /** Stops the mix's recording and every participant track's; false when none was running. */
  async stopRecording(id: string): Promise<boolean> {
    const entry = this.#require(id);
    entry.tracks = null;
    const hosts: TapHost[] = [entry.conference.mix, ...entry.conference.tracks()];
    const stopped = await Promise.all(hosts.map((h) => this.#o.recordings.stop(h)));
    return stopped.some(Boolean);
  }

  /** A conference's whole mix, for StartRecording, StreamAudio and InjectAudio. */
  mixOf(id: string): ConferenceMix {
    return this.#require(id).conference.mix;
  }

  closeAll(): void {
    this.#closed = true;
    for (const e of [...this.#byId.values()]) e.conference.close('shutdown');
  }

  #require(id: string): Entry {
    const e = this.#byId.get(id);
    if (!e) throw new MediaError('not_found', `no conference ${id}`);
    return e;
  }

  #wire(e: Entry): void {
    const { conference: c, traceId, tenantId } = e;
    const publish = this.#o.events;
    const cfg = this.#o.config.conference;
    const who = (p: ParticipantState) => ({ conferenceId: c.id, participantId: p.participantId, callId: p.callId });
    c.on('joined', (p) => {
      c.log.info({ event: 'CONFERENCE_JOINED', attributes: { 'conference.participant': p.participantId, 'conference.kind': p.kind, 'conference.size': c.size, ...(e.restoring ? { 'conference.restored': true } : {}) } }, 'participant joined');
      this.safeEmit('changed', c.id);
      if (e.restoring) return;
      publish.publish(genericEvent('call.media.conference.participant.joined', { traceId, tenantId, payload: { ...who(p), kind: p.kind } }));
      if (cfg.join_tone_uri) this.#tone(c, cfg.join_tone_uri, traceId);
      if (e.tracks) {
        const track = c.trackOf(p.participantId);
        this.#o.recordings.start(track, { ...e.tracks, callId: track.callId }).catch((error: unknown) => c.log.warn({ event: 'CONFERENCE_TRACK_RECORDING_FAILED', error, attributes: { 'conference.participant': p.participantId } }, "a joiner's track is not recorded"));
      }
    });
    c.on('left', (p, reason: LeaveReason) => {
      this.#remote.get(`${c.id}\u0000${p.participantId}`)?.(reason);
      c.log.info({ event: 'CONFERENCE_LEFT', attributes: { 'conference.participant': p.participantId, reason, 'conference.size': c.size } }, `participant left (${reason})`);
      publish.publish(genericEvent('call.media.conference.participant.left', { traceId, tenantId, payload: { ...who(p), kind: p.kind, reason } }));
      if (cfg.leave_tone_uri && reason !== 'conference_ended') this.#tone(c, cfg.leave_tone_uri, traceId);
      this.safeEmit('changed', c.id);
    });
    c.on('changed', () => this.safeEmit('changed', c.id));
    c.on('talking', (p, talking, atUnixMs) => {
      publish.publish(genericEvent('call.media.conference.talking', { traceId, tenantId, payload: { ...who(p), talking, atUnixMs: Math.round(atUnixMs) } }));
    });
    c.on('close', (reason) => {
      this.#byId.delete(c.id);
      this.#createdAtUnix.delete(c.id);
      this.#closedSharedEncodes += c.sharedEncodes;
      const f = c.feedTotals();
      this.#closedFeeds.dropped += f.dropped;
      this.#closedFeeds.trimmed += f.trimmed;
      this.#closedFeeds.underruns += f.underruns;
      publish.publish(genericEvent('call.media.conference.ended', { traceId, tenantId, payload: { conferenceId: c.id, reason, durationMs: Math.round(performance.now() - c.createdAtMs) } }));
      this.safeEmit('ended', c.id);
    });
  }

  #tone(c: Conference, uri: string, traceId: string): void {
    this.play(c.id, uri, '', traceId).catch((error: unknown) => c.log.warn({ event: 'CONFERENCE_TONE_FAILED', error, attributes: { 'conference.tone': uri } }, 'the conference tone could not play'));
  }
}
