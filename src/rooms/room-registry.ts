import { Gauge } from 'prom-client';
import { MediaError } from '../errors/media-error.ts';
import type { Logging } from '../logging/logger.ts';
import type { MediaClock } from '../media-path/clock.ts';
import type { Placement, WorkerPool } from '../media-engine/worker-pool.ts';
import { METRIC_PREFIX, type Metrics } from '../metrics/metrics.ts';
import type { SessionRegistry } from '../sessions/session-registry.ts';
import type { OpusSendSettings } from './opus-send-leg.ts';
import { Room, type RoomResources } from './room.ts';
import type { Conferences } from '../conference/conferences.ts';
import { ConferenceRoomLink } from '../conference/conference-room.ts';

/** What /debug/rooms answers: every room, and every worker's own count of routers and WebRTC transports. */
export interface RegistryResources {
  rooms: RoomResources[];
  creating: number;
  workers: { index: number; load: number; routers: number; webRtcTransports: number }[];
}

/** A room being created, and whether it is a call's. */
interface Creating {
  room: Promise<Room>;
  call: boolean;
}

/**
 * Every live room by id; a room is created by its first participant and removed when it
 * closes. A joiner holds the room from open() to release(), so a room nobody got into
 * (the joiner left, was refused, or failed) closes, unless someone else is still joining.
 */
export class RoomRegistry {
  readonly #rooms = new Map<string, Room>();
  readonly #creating = new Map<string, Creating>();
  readonly #holds = new Map<string, number>();
  readonly #o: { workers: WorkerPool; sessions: SessionRegistry; conferences: Conferences; clock: MediaClock; logging: Logging; settings: OpusSendSettings; maxPeers: number };
  #closed = false;

  constructor(opts: { workers: WorkerPool; sessions: SessionRegistry; conferences: Conferences; clock: MediaClock; logging: Logging; settings: OpusSendSettings; maxPeers: number; metrics: Metrics }) {
    this.#o = opts;
    const rooms = this.#rooms;
    new Gauge({
      name: `${METRIC_PREFIX}rooms`,
      help: 'Live signaling rooms, by whether a phone call is in them',
      labelNames: ['call'] as const,
      registers: [opts.metrics.registry],
      collect() {
        let withCall = 0;
        for (const r of rooms.values()) if (r.callBridged) withCall++;
        this.set({ call: 'true' }, withCall);
        this.set({ call: 'false' }, rooms.size - withCall);
      },
    });
  }

  get size(): number {
    return this.#rooms.size;
  }

  get(id: string): Room | undefined {
    return this.#rooms.get(id);
  }

  /** Whether `id` is a live call's room or a conference's, or will be: a demo grant never opens one. */
  isCallRoom(id: string): boolean {
    return this.#o.sessions.byCallId(id) !== undefined || this.#o.conferences.get(id) !== undefined || this.#rooms.get(id)?.callBridged === true || this.#creating.get(id)?.call === true;
  }

  /**
   * The room `id`, created on first use; `callId` set: the room is that live call's. The
   * caller holds the room until it calls release(room), whether it joined or not.
   */
  async open(id: string, callId: string | undefined): Promise<Room> {
    this.#hold(id, 1);
    try {
      return await this.#find(id, callId);
    } catch (error) {
      this.#hold(id, -1);
      this.#closeIfUnused(id);
      throw error;
    }
  }

  /** The caller of open() is done joining: a room with nobody in it and nobody joining closes. */
  release(room: Room): void {
    this.#hold(room.id, -1);
    this.#closeIfUnused(room.id);
  }

  async resources(): Promise<RegistryResources> {
    const rooms = await Promise.all([...this.#rooms.values()].map((r) => r.resources()));
    const workers = await Promise.all(
      this.#o.workers.workers().map(async (w) => {
        const dump = (await w.worker.dump().catch(() => undefined)) as { routerIds: string[] } | undefined;
        const server = (await w.webRtcServer?.dump().catch(() => undefined)) as { webRtcTransportIds: string[] } | undefined;
        return { index: w.index, load: w.load, routers: dump?.routerIds.length ?? 0, webRtcTransports: server?.webRtcTransportIds.length ?? 0 };
      }),
    );
    return { rooms, creating: this.#creating.size, workers };
  }

  closeAll(reason: string): void {
    this.#closed = true;
    for (const r of [...this.#rooms.values()]) r.close(reason);
  }

  async #find(id: string, callId: string | undefined): Promise<Room> {
    for (;;) {
      const live = this.#rooms.get(id);
      if (live && !live.closed) {
        if (!callId || live.callBridged) return live;
        // A live call's id names that call's room: an ordinary room of the same name (opened
        // before the call existed) gives way, and everyone in it is told it closed.
        live.close('a call now uses this room id');
        continue;
      }
      const pending = this.#creating.get(id);
      if (pending && (pending.call || !callId)) return pending.room;
      if (pending) {
        await pending.room.catch(() => undefined);
        continue;
      }
      const room = this.#create(id, callId).finally(() => this.#creating.delete(id));
      this.#creating.set(id, { room, call: callId !== undefined });
      return room;
    }
  }

  async #create(id: string, callId: string | undefined): Promise<Room> {
    if (this.#closed) throw new MediaError('unavailable', 'the service is stopping');
    const call = callId ? this.#o.sessions.byCallId(callId) : undefined;
    if (callId && !call) throw new MediaError('not_found', `the call ${callId} has ended`);
    const log = this.#o.logging.forContext({ trace_id: call?.traceId ?? null, call_id: call?.callId ?? null }).child({ room_id: id });
    let placement: Placement;
    try {
      placement = this.#o.workers.place();
    } catch (error) {
      throw new MediaError('unavailable', 'no media worker is running; try again shortly', { cause: error });
    }
    const room = await Room.create({ id, placement, call, clock: this.#o.clock, settings: this.#o.settings, maxPeers: this.#o.maxPeers, log });
    if (this.#closed) {
      room.close('the service is stopping');
      throw new MediaError('unavailable', 'the service is stopping');
    }
    const conference = call ? undefined : this.#o.conferences.get(id);
    if (conference) {
      try {
        const conferences = this.#o.conferences;
        await ConferenceRoomLink.attach(room, conference, {
          platform: {
            moderate: (pid, c) => {
              if (c.kick) conferences.remove(id, pid, true);
              else conferences.control(id, pid, { ...(c.mute !== undefined ? { muted: c.mute } : {}), ...(c.deaf !== undefined ? { deaf: c.deaf } : {}) });
            },
          },
        });
      } catch (error) {
        room.close('the conference could not be joined');
        throw new MediaError('unavailable', `the room cannot join conference ${id}`, { cause: error });
      }
    }
    this.#rooms.set(id, room);
    room.on('close', () => {
      if (this.#rooms.get(id) === room) this.#rooms.delete(id);
    });
    log.info({ event: 'ROOM_OPENED', attributes: { 'room.id': id, 'room.call': call !== undefined } }, 'room opened');
    return room;
  }

  #hold(id: string, delta: 1 | -1): void {
    const n = (this.#holds.get(id) ?? 0) + delta;
    if (n > 0) this.#holds.set(id, n);
    else this.#holds.delete(id);
  }

  #closeIfUnused(id: string): void {
    if (this.#holds.has(id)) return;
    const room = this.#rooms.get(id);
    if (room && !room.closed && room.browserCount === 0) room.close('nobody joined');
  }
}
