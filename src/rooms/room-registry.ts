import { Gauge } from 'prom-client';
import { MediaError } from '../errors/media-error.ts';
import type { Logging } from '../logging/logger.ts';
import type { MediaClock } from '../media-path/clock.ts';
import type { WorkerPool } from '../media-engine/worker-pool.ts';
import { METRIC_PREFIX, type Metrics } from '../metrics/metrics.ts';
import type { SessionRegistry } from '../sessions/session-registry.ts';
import type { TranscodeSettings } from './call-leg.ts';
import { Room, type RoomResources } from './room.ts';

/** What /debug/rooms answers: every room, and every worker's own count of routers and WebRTC transports. */
export interface RegistryResources {
  rooms: RoomResources[];
  creating: number;
  workers: { index: number; load: number; routers: number; webRtcTransports: number }[];
}

/** Every live room by id; a room is created by its first participant and removed when it closes. */
export class RoomRegistry {
  readonly #rooms = new Map<string, Room>();
  readonly #creating = new Map<string, Promise<Room>>();
  readonly #o: { workers: WorkerPool; sessions: SessionRegistry; clock: MediaClock; logging: Logging; settings: TranscodeSettings; maxPeers: number };

  constructor(opts: { workers: WorkerPool; sessions: SessionRegistry; clock: MediaClock; logging: Logging; settings: TranscodeSettings; maxPeers: number; metrics: Metrics }) {
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

  /** The room `id`, created on first use; `callId` set: the room is that live call's. */
  async open(id: string, callId: string | undefined): Promise<Room> {
    const live = this.#rooms.get(id);
    if (live && !live.closed) return live;
    const pending = this.#creating.get(id);
    if (pending) return pending;
    const creating = this.#create(id, callId).finally(() => this.#creating.delete(id));
    this.#creating.set(id, creating);
    return creating;
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
    for (const r of [...this.#rooms.values()]) r.close(reason);
  }

  async #create(id: string, callId: string | undefined): Promise<Room> {
    const call = callId ? this.#o.sessions.byCallId(callId) : undefined;
    if (callId && !call) throw new MediaError('not_found', `the call ${callId} has ended`);
    const log = this.#o.logging.forContext({ trace_id: call?.traceId ?? null, call_id: call?.callId ?? null }).child({ room_id: id });
    const room = await Room.create({ id, pooled: this.#o.workers.leastLoaded(), call, clock: this.#o.clock, settings: this.#o.settings, maxPeers: this.#o.maxPeers, log });
    this.#rooms.set(id, room);
    room.on('close', () => {
      if (this.#rooms.get(id) === room) this.#rooms.delete(id);
    });
    log.info({ event: 'ROOM_OPENED', attributes: { 'room.id': id, 'room.call': call !== undefined } }, 'room opened');
    return room;
  }
}
