import amqp from 'amqplib';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../logging/logger.ts';
import { METRIC_PREFIX } from '../metrics/metrics.ts';
import type { EventPublisher, PlatformEvent } from './types.ts';

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10_000;
const CLOSE_FLUSH_MS = 2000;

interface Metrics {
  published: Counter<'type'>;
  dropped: Counter;
  buffered: Gauge;
}

/**
 * Platform events to a durable topic exchange, routing key = event type. Media never waits
 * for the broker: events wait in a bounded FIFO (oldest dropped and counted when full) and
 * leave it only once the broker confirmed them, so a connection lost mid-flight re-sends
 * them (at-least-once). The connection is re-made with backoff for as long as it takes.
 */
export class RabbitMqPublisher implements EventPublisher {
  readonly #url: string;
  readonly #exchange: string;
  readonly #log: Logger;
  readonly #max: number;
  readonly #m: Metrics;
  readonly #buffer: PlatformEvent[] = [];
  #conn: amqp.ChannelModel | null = null;
  #channel: amqp.ConfirmChannel | null = null;
  #inFlight = 0;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #up = false;

  static create(opts: { url: string; exchange: string; logger: Logger; registry: Registry; maxBuffered?: number }): RabbitMqPublisher {
    const p = new RabbitMqPublisher(opts);
    void p.#connect();
    return p;
  }

  private constructor(opts: { url: string; exchange: string; logger: Logger; registry: Registry; maxBuffered?: number }) {
    this.#url = opts.url;
    this.#exchange = opts.exchange;
    this.#log = opts.logger.child({ component: 'events' });
    this.#max = opts.maxBuffered ?? 10_000;
    const registers = [opts.registry];
    const self = this;
    this.#m = {
      published: new Counter({ name: `${METRIC_PREFIX}events_published_total`, help: 'Events confirmed by the broker, by type', labelNames: ['type'] as const, registers }),
      dropped: new Counter({ name: `${METRIC_PREFIX}events_dropped_total`, help: 'Events dropped because the buffer was full while the broker was away', registers }),
      buffered: new Gauge({
        name: `${METRIC_PREFIX}events_buffered`,
        help: 'Events waiting for the broker',
        registers,
        collect() {
          this.set(self.#buffer.length);
        },
      }),
    };
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  publish(event: PlatformEvent): void {
    if (this.#closed) return;
    if (this.#buffer.length >= this.#max) {
      this.#buffer.shift();
      this.#m.dropped.inc();
    }
    this.#buffer.push(event);
    this.#flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    const deadline = Date.now() + CLOSE_FLUSH_MS;
    while (this.#buffer.length > 0 && this.#channel && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#buffer.length > 0) this.#log.warn({ event: 'EVENTS_UNSENT', attributes: { 'events.buffered': this.#buffer.length } }, 'events not delivered at shutdown');
    await this.#conn?.close().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    try {
      const conn = await amqp.connect(this.#url, { timeout: 5000 });
      const channel = await conn.createConfirmChannel();
      await channel.assertExchange(this.#exchange, 'topic', { durable: true });
      if (this.#closed) {
        await conn.close();
        return;
      }
      const lost = (err?: Error): void => this.#lost(conn, err);
      conn.on('error', lost);
      conn.on('close', () => lost());
      channel.on('error', lost);
      channel.on('close', () => lost());
      this.#conn = conn;
      this.#channel = channel;
      this.#attempt = 0;
      this.#up = true;
      this.#log.info({ event: 'EVENTS_CONNECTED', attributes: { 'events.exchange': this.#exchange, 'events.buffered': this.#buffer.length } }, 'connected to RabbitMQ');
      this.#flush();
    } catch (error) {
      if (this.#up || this.#attempt === 0) {
        this.#log.warn({ event: 'EVENTS_UNAVAILABLE', error: { message: (error as Error).message } }, 'RabbitMQ unreachable; events are buffered');
      } else {
        this.#log.debug({ event: 'EVENTS_RETRY', attributes: { attempt: this.#attempt } }, 'RabbitMQ still unreachable');
      }
      this.#up = false;
      this.#retry();
    }
  }

  #lost(conn: amqp.ChannelModel, err?: Error): void {
    if (this.#conn !== conn) return;
    this.#conn = null;
    this.#channel = null;
    this.#inFlight = 0;
    conn.close().catch(() => undefined);
    if (this.#closed) return;
    this.#log.warn({ event: 'EVENTS_DISCONNECTED', error: err ? { message: err.message } : undefined }, 'lost the RabbitMQ connection; events are buffered');
    this.#up = false;
    this.#attempt = 0;
    this.#retry();
  }

  #retry(): void {
    if (this.#closed || this.#timer) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.#attempt++);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#connect();
    }, base * (0.5 + Math.random()));
    this.#timer.unref();
  }

  /** Sends what is buffered, in order; each event leaves the buffer when its confirm arrives. */
  #flush(): void {
    const ch = this.#channel;
    if (!ch) return;
    while (this.#inFlight < this.#buffer.length) {
      const ev = this.#buffer[this.#inFlight]!;
      this.#inFlight++;
      ch.publish(
        this.#exchange,
        ev.type,
        Buffer.from(JSON.stringify(ev.body)),
        { persistent: true, contentType: 'application/json', messageId: ev.id, timestamp: Math.floor(Date.now() / 1000), type: ev.type },
        (err) => {
          if (this.#channel !== ch) return;
          if (err) return;
          // Confirms arrive in publish order on one channel: the oldest in flight is done.
          const i = this.#buffer.indexOf(ev);
          if (i >= 0) {
            this.#buffer.splice(i, 1);
            this.#inFlight = Math.max(0, this.#inFlight - 1);
          }
          this.#m.published.inc({ type: ev.type });
        },
      );
    }
  }
}
