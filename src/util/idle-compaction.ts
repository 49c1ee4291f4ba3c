import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from '../logging/logger.ts';

type Gc = (opts?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void | Promise<void>;

let gc: Gc | undefined;

function collector(): Gc {
  if (!gc) {
    // The documented way is `node --expose-gc`; setting the flag here gives the same function
    // without changing how every deployment starts the process.
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  }
  return gc;
}

/** Calls gone since the peak before a collection is worth it: fewer are noise. */
const MIN_DROP = 20;

/**
 * When the load has fallen to half its peak (by at least MIN_DROP calls) since the last
 * collection. The process starts with a large old generation (see main.js), so that steady
 * load runs few full collections; the garbage a peak of calls left would then stay resident
 * while the calls that remain allocate too little to reach that limit (measured: 221 MB with
 * 10 calls live after 800 came and went, 90 MB with V8's own limit).
 */
export class LoadDrop {
  #peak = 0;

  /** The load now; true when a collection should run (the peak starts again from here). */
  observe(load: number): boolean {
    if (load > this.#peak) this.#peak = load;
    if (this.#peak - load < MIN_DROP || load > this.#peak / 2) return false;
    this.#peak = load;
    return true;
  }
}

/**
 * One memory-reducing collection, logged: V8 collects until nothing more is freed, compacts,
 * and hands back the young generation that start-up or the calls grew (a plain full
 * collection keeps it). It pauses the process (measured 30 to 100 ms): only for moments when
 * no call is there to feel it.
 */
export function compactHeap(log: Logger, after: 'start' | 'idle'): void {
  const before = process.memoryUsage();
  const t0 = performance.now();
  collector()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  const ms = performance.now() - t0;
  const heap = process.memoryUsage().heapTotal;
  // The pages V8 gave back leave the RSS a moment later: the heap figures say what was freed.
  log.info(
    {
      event: 'IDLE_COMPACTION',
      attributes: {
        'compaction.after': after,
        'gc.ms': +ms.toFixed(1),
        'rss.before_mb': Math.round(before.rss / 2 ** 20),
        'heap.before_mb': Math.round(before.heapTotal / 2 ** 20),
        'heap.after_mb': Math.round(heap / 2 ** 20),
      },
    },
    after === 'start' ? 'started: the heap start-up grew compacted' : 'idle: garbage of the calls that ended collected',
  );
}

/**
 * Node collects no garbage while nothing allocates, so after calls came and went their
 * garbage and the heap they grew stay resident (measured: 133 MB at start, 245 MB after
 * 2400 calls, of which a full collection leaves a heap of 23 MB). Once the process has been
 * idle (no call, no room) for a whole check after activity, and once just after start, it
 * is compacted (compactHeap; the young generation start-up grew was 17 MB of the 110 MB
 * 3 s after start).
 */
export class IdleCompaction {
  readonly #timer: NodeJS.Timeout;
  readonly #log: Logger;
  readonly #idle: () => boolean;
  #afterStart: NodeJS.Timeout | undefined;
  #seen = -1;
  #dirty = false;

  readonly #drop = new LoadDrop();

  /** `load`: the calls and rooms live now. */
  constructor(opts: { idle: () => boolean; activity: () => number; load: () => number; checkMs: number; log: Logger }) {
    this.#log = opts.log;
    this.#idle = opts.idle;
    this.#timer = setInterval(() => {
      const load = opts.load();
      if (this.#drop.observe(load) && !opts.idle()) {
        // Run as V8 runs its own, incrementally beside the calls still live: measured with 60 MB
        // live, the loop's longest delay was 4.7 ms, against 47 ms for the same collection at once.
        void Promise.resolve(collector()({ type: 'major', execution: 'async' })).catch(() => {});
        this.#log.info({ event: 'LOAD_DROP_COLLECTION', attributes: { 'load.now': load } }, 'load fell to half its peak: garbage of the calls that ended collected');
      }
      const a = opts.activity();
      if (a !== this.#seen || !opts.idle()) {
        this.#seen = a;
        this.#dirty = true;
        return;
      }
      if (!this.#dirty) return;
      this.#dirty = false;
      compactHeap(this.#log, 'idle');
    }, opts.checkMs);
    this.#timer.unref();
  }

  /** Compacts once, `delayMs` after the service started, if no call came by then. */
  afterStart(delayMs: number): void {
    clearTimeout(this.#afterStart);
    this.#afterStart = setTimeout(() => {
      if (this.#idle()) compactHeap(this.#log, 'start');
    }, delayMs);
    this.#afterStart.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#afterStart);
  }
}
