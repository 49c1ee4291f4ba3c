import type { types as ms } from 'mediasoup';
import { availableParallelism } from 'node:os';
import { Gauge } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logging/logger.ts';
import { METRIC_PREFIX, type Metrics } from '../metrics/metrics.ts';
import { TypedEmitter } from '../util/typed-emitter.ts';
import { loadMediasoup } from './mediasoup-loader.ts';

export interface PooledWorker {
  readonly index: number;
  readonly worker: ms.Worker;
  /** Things placed on this worker (routers, sessions): the pool's measure of load. */
  load: number;
  /** Where this worker's browsers connect (one UDP and one TCP port), when WebRTC is on. */
  readonly webRtcServer: ms.WebRtcServer | undefined;
}

/** One thing's place on a worker, counted in its load from the moment it is given. */
export interface Placement {
  readonly pooled: PooledWorker;
  /** Takes the thing off the worker's load; later calls do nothing. */
  release(): void;
}

/** Browsers reach worker i at `basePort + i`, so a restarted worker gets its port back. */
export interface WebRtcListen {
  listenIp: string;
  announcedIp: string;
  basePort: number;
}

export interface WorkerPoolEvents extends Record<string, unknown[]> {
  /** A worker died; whatever lived on it is gone. A replacement is being started. */
  workerdied: [PooledWorker, Error];
  workerstarted: [PooledWorker];
}

const RESPAWN_BACKOFF_MS = [100, 500, 1000, 2000, 5000];

export class WorkerPool extends TypedEmitter<WorkerPoolEvents> {
  readonly #config: Config['mediasoup'];
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #mediasoup: typeof import('mediasoup');
  readonly #slots: (PooledWorker | undefined)[];
  #closed = false;

  readonly #webRtc: WebRtcListen | undefined;

  static async create(opts: { config: Config['mediasoup']; logger: Logger; metrics: Metrics; webRtc?: WebRtcListen }): Promise<WorkerPool> {
    const log = opts.logger.child({ component: 'worker-pool' });
    const mediasoup = await loadMediasoup({
      workerBin: opts.config.worker_bin,
      // Its lines carry component=mediasoup; a child of ours would write `component` twice.
      logger: opts.logger,
      debugLogs: opts.config.log_level === 'debug',
    });
    const count = opts.config.num_workers > 0 ? opts.config.num_workers : availableParallelism();
    const pool = new WorkerPool(opts.config, log, opts.metrics, mediasoup, count, opts.webRtc);
    try {
      await Promise.all(pool.#slots.map((_, i) => pool.#start(i)));
    } catch (err) {
      pool.close();
      throw err;
    }
    log.info({ event: 'WORKERS_STARTED', attributes: { 'mediasoup.workers': count, 'mediasoup.version': mediasoup.version } }, 'mediasoup workers started');
    return pool;
  }

  private constructor(config: Config['mediasoup'], log: Logger, metrics: Metrics, mediasoup: typeof import('mediasoup'), count: number, webRtc: WebRtcListen | undefined) {
    super(log);
    this.#webRtc = webRtc;
    this.#config = config;
    this.#log = log;
    this.#metrics = metrics;
    this.#mediasoup = mediasoup;
    this.#slots = new Array<PooledWorker | undefined>(count).fill(undefined);
    this.#registerResourceMetrics();
  }

  get mediasoup(): typeof import('mediasoup') {
    return this.#mediasoup;
  }

  get size(): number {
    return this.#slots.length;
  }

  get alive(): number {
    return this.#slots.filter((s) => s !== undefined).length;
  }

  workers(): PooledWorker[] {
    return this.#slots.filter((s): s is PooledWorker => s !== undefined);
  }

  /** The least-loaded live worker; throws when none is alive (all are restarting). */
  leastLoaded(): PooledWorker {
    let best: PooledWorker | undefined;
    for (const s of this.#slots) if (s && (!best || s.load < best.load)) best = s;
    if (!best) throw new Error('no mediasoup worker is alive');
    return best;
  }

  /**
   * A place on the least-loaded live worker. It is counted before the caller's first await,
   * so things placed at the same moment spread instead of all landing on one worker.
   */
  place(): Placement {
    const pooled = this.leastLoaded();
    pooled.load++;
    let held = true;
    return {
      pooled,
      release: () => {
        if (!held) return;
        held = false;
        pooled.load--;
      },
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#slots) s?.worker.close();
    this.#slots.fill(undefined);
    this.#metrics.workersAlive.set(0);
    this.removeAllListeners();
  }

  async #start(index: number): Promise<void> {
    const worker = await this.#mediasoup.createWorker({
      logLevel: this.#config.log_level,
      logTags: ['info', 'ice', 'dtls', 'rtp', 'srtp', 'rtcp'],
      rtcMinPort: this.#config.rtc_min_port,
      rtcMaxPort: this.#config.rtc_max_port,
      appData: { index },
    });
    if (this.#closed) {
      worker.close();
      return;
    }
    let webRtcServer: ms.WebRtcServer | undefined;
    if (this.#webRtc) {
      const { listenIp, announcedIp, basePort } = this.#webRtc;
      const port = basePort + index;
      try {
        webRtcServer = await worker.createWebRtcServer({
          listenInfos: (['udp', 'tcp'] as const).map((protocol) => ({ protocol, ip: listenIp, announcedIp, port })),
        });
      } catch (error) {
        worker.close();
        throw new Error(`the WebRTC server of worker ${index} cannot listen on ${listenIp}:${port} (webrtc.port): ${(error as Error).message}`, { cause: error });
      }
    }
    const pooled: PooledWorker = { index, worker, load: 0, webRtcServer };
    this.#slots[index] = pooled;
    this.#metrics.workersAlive.set(this.alive);
    worker.on('died', (error) => this.#onDied(pooled, error));
    this.#log.debug({ event: 'WORKER_STARTED', attributes: { 'mediasoup.worker.pid': worker.pid, 'mediasoup.worker.index': index } }, 'worker started');
    this.safeEmit('workerstarted', pooled);
  }

  #onDied(pooled: PooledWorker, error: Error): void {
    if (this.#slots[pooled.index] === pooled) this.#slots[pooled.index] = undefined;
    this.#metrics.workerDeaths.inc();
    this.#metrics.workersAlive.set(this.alive);
    this.#log.error(
      { event: 'WORKER_DIED', error, attributes: { 'mediasoup.worker.pid': pooled.worker.pid, 'mediasoup.worker.index': pooled.index } },
      'mediasoup worker died; starting a replacement',
    );
    this.safeEmit('workerdied', pooled, error);
    void this.#respawn(pooled.index, 0);
  }

  async #respawn(index: number, attempt: number): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#start(index);
      this.#log.info({ event: 'WORKER_REPLACED', attributes: { 'mediasoup.worker.index': index } }, 'mediasoup worker replaced');
    } catch (error) {
      const delay = RESPAWN_BACKOFF_MS[Math.min(attempt, RESPAWN_BACKOFF_MS.length - 1)] ?? 5000;
      this.#log.error({ event: 'WORKER_RESPAWN_FAILED', error, attributes: { 'retry.in_ms': delay } }, 'could not start a mediasoup worker');
      setTimeout(() => void this.#respawn(index, attempt + 1), delay).unref();
    }
  }

  #registerResourceMetrics(): void {
    const pool = this;
    const usage = async (): Promise<{ index: number; u: ms.WorkerResourceUsage }[]> => {
      const live = pool.workers();
      const results = await Promise.allSettled(live.map((w) => w.worker.getResourceUsage()));
      const out: { index: number; u: ms.WorkerResourceUsage }[] = [];
      results.forEach((r, i) => {
        const w = live[i];
        if (r.status === 'fulfilled' && w) out.push({ index: w.index, u: r.value });
      });
      return out;
    };
    new Gauge({
      name: `${METRIC_PREFIX}worker_cpu_seconds`,
      help: 'CPU time (user+system) used by each mediasoup worker since it started',
      labelNames: ['worker'] as const,
      registers: [this.#metrics.registry],
      async collect() {
        this.reset();
        for (const { index, u } of await usage()) this.set({ worker: String(index) }, (u.ru_utime + u.ru_stime) / 1000);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}worker_max_rss_bytes`,
      help: 'Peak resident memory of each mediasoup worker',
      labelNames: ['worker'] as const,
      registers: [this.#metrics.registry],
      async collect() {
        this.reset();
        for (const { index, u } of await usage()) this.set({ worker: String(index) }, u.ru_maxrss * 1024);
      },
    });
  }
}
