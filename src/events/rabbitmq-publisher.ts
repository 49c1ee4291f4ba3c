import amqp from 'amqplib';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../logging/logger.ts';
import { METRIC_PREFIX } from '../metrics/metrics.ts';
import type { EventPublisher, PlatformEvent, PlatformEventType } from './types.ts';

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10_000;
/** A link that dies sooner than this does not reset the backoff, so a flapping broker is not hammered. */
const STABLE_LINK_MS = 10_000;
const CONNECT_TIMEOUT_MS = 3000;
const CLOSE_FLUSH_MS = 2000;
const CONNECTION_CLOSE_MS = 1000;

export interface RabbitMqPublisherOptions {
  /** amqp(s):// URL; add ?heartbeat=N to detect a silently dead broker faster than the server's default. */
  url: string;
  exchange: string;
  logger: Logger;
  /** Holds this publisher's metrics: one publisher per registry. */
  registry: Registry;
  /** Events kept while the broker is away or has not confirmed them yet; the oldest go first. */
  maxBuffered?: number;
}

/** An event serialized once at publish time, so a re-send after reconnect sends the same bytes. */
interface Entry {
  type: PlatformEventType;
  id: string;
  /** Seconds, as AMQP timestamps are. */
  timestamp: number;
  content: Buffer;
}

/** One connection and its confirm channel; `dead` latches the first error/close seen. */
interface Link {
  conn: amqp.ChannelModel;
  channel: amqp.ConfirmChannel | null;
  dead: boolean;
  upAt: number;
}

/**
 * Platform events to a durable topic exchange, routing key = event type. The media path never
 * waits for the broker: events wait in a bounded FIFO (oldest dropped and counted when full)
 * and leave it only once the broker confirmed them, so events in flight when a connection is
 * lost are sent again on the next one (at-least-once, consumers de-duplicate on messageId).
 * The connection is re-made with jittered backoff for as long as the publisher is open.
 */
export class RabbitMqPublisher implements EventPublisher {
  readonly #url: string;
  readonly #exchange: string;
  readonly #log: Logger;
  readonly #max: number;
  readonly #published: Counter<'type'>;
  readonly #dropped: Counter;
  /** Oldest first. Entries [0, #inFlight) were published on #link and await their confirm. */
  readonly #buffer: Entry[] = [];
  #inFlight = 0;
  #link: Link | null = null;
  /** False after the channel's write buffer filled up, until it emits 'drain'. */
  #writable = true;
  #connecting: Promise<void> | null = null;
  #retryTimer: NodeJS.Timeout | undefined;
  #attempt = 0;
  /** Whether "down" was already logged at warn since the last "up", so retries go to debug. */
  #downLogged = false;
  #overflowLogged = false;
  /** close() began: no more retries are scheduled. */
  #stopping = false;
  /** close() gave up flushing: no link is adopted any more and publish() drops. */
  #closed = false;
  #closing: Promise<void> | null = null;
  readonly #waiters = new Set<() => void>();

  /** Returns at once: the first connection is made in the background, events buffer meanwhile. */
  static async create(opts: RabbitMqPublisherOptions): Promise<RabbitMqPublisher> {
    const p = new RabbitMqPublisher(opts);
    p.#startConnect();
    return p;
  }

  private constructor(opts: RabbitMqPublisherOptions) {
    this.#url = opts.url;
    this.#exchange = opts.exchange;
    this.#log = opts.logger.child({ component: 'events' });
    this.#max = Math.max(1, Math.floor(opts.maxBuffered ?? 10_000));
    const registers = [opts.registry];
    this.#published = new Counter({
      name: `${METRIC_PREFIX}events_published_total`,
      help: 'Platform events confirmed by the broker, by type',
      labelNames: ['type'] as const,
      registers,
    });
    this.#dropped = new Counter({
      name: `${METRIC_PREFIX}events_dropped_total`,
      help: 'Platform events given up on: buffer full while the broker was away or slow, or still unsent at shutdown',
      registers,
    });
    const buffer = this.#buffer;
    const buffered: Gauge = new Gauge({
      name: `${METRIC_PREFIX}events_buffered`,
      help: 'Platform events waiting to be confirmed by the broker',
      registers,
      collect: () => buffered.set(buffer.length),
    });
  }

  publish(event: PlatformEvent): void {
    try {
      if (this.#closed) {
        this.#dropped.inc();
        return;
      }
      if (this.#buffer.length >= this.#max) {
        this.#buffer.shift();
        if (this.#inFlight > 0) this.#inFlight--;
        this.#dropped.inc();
        if (!this.#overflowLogged) {
          this.#overflowLogged = true;
          this.#log.warn({ event: 'EVENTS_BUFFER_FULL', attributes: { 'events.max_buffered': this.#max } }, 'event buffer full; dropping the oldest events');
        }
      }
      this.#buffer.push({
        type: event.type,
        id: event.id,
        timestamp: Math.floor(event.createdAt.getTime() / 1000),
        content: Buffer.from(JSON.stringify(event.body)),
      });
      this.#flush();
    } catch (error) {
      this.#log.error({ event: 'EVENT_PUBLISH_FAILED', error, attributes: { 'event.type': event.type } }, 'could not queue a platform event');
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#stopping = true;
    const deadline = performance.now() + CLOSE_FLUSH_MS;
    if (this.#buffer.length > 0 && !this.#link) {
      // Between retries the broker may already be back: one attempt now rather than at the next backoff tick.
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
      this.#startConnect();
    }
    await this.#waitUntil(() => this.#buffer.length === 0 || (!this.#link && !this.#connecting), deadline);
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    // An attempt still under way sees #closed and closes its own connection before settling.
    await this.#connecting;
    const link = this.#link;
    this.#link = null;
    if (link) await closeQuietly(link.conn);
    const unsent = this.#buffer.length;
    if (unsent > 0) {
      this.#dropped.inc(unsent);
      this.#log.warn({ event: 'EVENTS_UNSENT', attributes: { 'events.unsent': unsent } }, 'platform events not confirmed by the broker at shutdown');
    }
    this.#buffer.length = 0;
    this.#inFlight = 0;
    this.#notify();
  }

  #startConnect(): void {
    if (this.#connecting || this.#link || this.#closed) return;
    this.#connecting = this.#connect().then(() => {
      this.#connecting = null;
      this.#notify();
    });
  }

  /** Never rejects: every failure ends in a scheduled retry (or nothing, when closing). */
  async #connect(): Promise<void> {
    let link: Link | null = null;
    try {
      const conn = await amqp.connect(this.#url, {
        timeout: CONNECT_TIMEOUT_MS,
        clientProperties: { connection_name: 'media-service events' },
      });
      const l: Link = { conn, channel: null, dead: false, upAt: 0 };
      link = l;
      // Listeners go on before anything else is awaited: an 'error' with no listener would crash the process.
      const down = (err?: Error): void => this.#linkDown(l, err);
      conn.on('error', down);
      conn.on('close', () => down());
      conn.on('blocked', (reason: unknown) => {
        this.#log.warn({ event: 'EVENTS_BROKER_BLOCKED', attributes: { reason: String(reason) } }, 'RabbitMQ blocked publishing; events are buffered');
      });
      conn.on('unblocked', () => this.#log.info({ event: 'EVENTS_BROKER_UNBLOCKED' }, 'RabbitMQ accepts events again'));
      const channel = await conn.createConfirmChannel();
      channel.on('error', down);
      channel.on('close', () => down());
      channel.on('drain', () => {
        if (this.#link !== l) return;
        this.#writable = true;
        this.#flush();
      });
      l.channel = channel;
      await channel.assertExchange(this.#exchange, 'topic', { durable: true });
      if (l.dead) throw new Error('connection lost while setting up');
      if (this.#closed) {
        await closeQuietly(conn);
        return;
      }
      l.upAt = performance.now();
      this.#link = l;
      this.#inFlight = 0;
      this.#writable = true;
      this.#downLogged = false;
      this.#log.info(
        { event: 'EVENTS_CONNECTED', attributes: { 'messaging.destination': this.#exchange, 'events.buffered': this.#buffer.length } },
        'connected to RabbitMQ',
      );
      this.#flush();
    } catch (error) {
      if (link) {
        link.dead = true;
        void closeQuietly(link.conn);
      }
      if (!this.#downLogged) {
        this.#downLogged = true;
        this.#log.warn(
          { event: 'EVENTS_UNAVAILABLE', error, attributes: { 'events.buffered': this.#buffer.length } },
          'RabbitMQ unreachable; events are buffered until it is back',
        );
      } else {
        this.#log.debug({ event: 'EVENTS_RETRY_FAILED', error, attributes: { attempt: this.#attempt } }, 'RabbitMQ still unreachable');
      }
      this.#scheduleRetry();
    }
  }

  #linkDown(link: Link, err?: Error): void {
    if (link.dead) return;
    link.dead = true;
    // A link still being set up is the setup's to clean up; a closed one was closed by close().
    if (this.#link !== link) return;
    this.#link = null;
    // Unconfirmed events stay at the head of the buffer and are sent again on the next link.
    this.#inFlight = 0;
    void closeQuietly(link.conn);
    if (performance.now() - link.upAt >= STABLE_LINK_MS) this.#attempt = 0;
    if (!this.#stopping && !this.#downLogged) {
      this.#downLogged = true;
      this.#log.warn(
        { event: 'EVENTS_DISCONNECTED', error: err, attributes: { 'events.buffered': this.#buffer.length } },
        'lost the RabbitMQ connection; events are buffered until it is back',
      );
    }
    this.#scheduleRetry();
    this.#notify();
  }

  #scheduleRetry(): void {
    if (this.#stopping || this.#retryTimer) return;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 16);
    // Jitter spreads reconnects of many instances after a broker restart.
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#startConnect();
    }, delay);
    // Pending retries alone must not keep a process alive that forgot to close().
    this.#retryTimer.unref();
  }

  /** Sends the not-yet-sent part of the buffer, in order, as far as the channel accepts writes. */
  #flush(): void {
    const link = this.#link;
    const channel = link?.channel;
    if (!link || !channel) return;
    while (this.#writable && this.#inFlight < this.#buffer.length) {
      const entry = this.#buffer[this.#inFlight]!;
      this.#inFlight++;
      let accepted: boolean;
      try {
        accepted = channel.publish(
          this.#exchange,
          entry.type,
          entry.content,
          { persistent: true, contentType: 'application/json', messageId: entry.id, timestamp: entry.timestamp, type: entry.type },
          (err) => this.#confirmed(link, entry, err),
        );
      } catch (error) {
        // amqplib throws on a channel that closed before its 'close' event reached us.
        this.#linkDown(link, error as Error);
        return;
      }
      if (!accepted) this.#writable = false;
    }
  }

  #confirmed(link: Link, entry: Entry, err: unknown): void {
    // Confirms (or errors) of a lost link are moot: its entries are re-sent on the next one.
    if (this.#link !== link) return;
    if (err) {
      // A nack leaves the message's fate unknown; re-sending everything unconfirmed on a fresh
      // channel keeps the order, which re-sending this one alone would not.
      this.#log.warn({ event: 'EVENTS_NACKED', error: err, attributes: { 'event.type': entry.type } }, 'RabbitMQ refused an event; reconnecting to re-send');
      this.#linkDown(link, err instanceof Error ? err : new Error(String(err)));
      return;
    }
    // Confirms come in publish order and entries only leave from the head, so a confirmed
    // entry is the head unless it was dropped for overflow while in flight.
    if (this.#buffer[0] === entry) {
      this.#buffer.shift();
      this.#inFlight--;
    }
    this.#published.inc({ type: entry.type });
    if (this.#buffer.length === 0) {
      this.#overflowLogged = false;
      this.#notify();
    }
  }

  async #waitUntil(done: () => boolean, deadline: number): Promise<void> {
    while (!done()) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#waiters.add(wake);
      });
    }
  }

  #notify(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}

/** Closes a connection without ever rejecting or hanging: a peer that never answers gets its socket destroyed. */
async function closeQuietly(conn: amqp.ChannelModel): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const hung = await Promise.race([
    conn.close().then(
      () => false,
      () => false,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), CONNECTION_CLOSE_MS);
    }),
  ]);
  clearTimeout(timer);
  if (hung) {
    // amqplib exposes no abort; its socket is the only handle left to release.
    (conn.connection as unknown as { stream?: { destroy(): void } }).stream?.destroy();
  }
}
