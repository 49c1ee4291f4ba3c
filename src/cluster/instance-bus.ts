import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { MediaError, type MediaErrorCode } from '../errors/media-error.ts';
import type { Logger } from '../logging/logger.ts';

const CHANNEL = (id: string): string => `sentiric-media:bus:${id}`;

type Envelope =
  | { kind: 'request'; from: string; id: string; body: unknown }
  | { kind: 'reply'; from: string; id: string; body?: unknown; error?: { code: MediaErrorCode; message: string } }
  | { kind: 'note'; from: string; body: unknown };

export type RequestHandler = (from: string, body: unknown) => Promise<unknown>;
export type NoteHandler = (from: string, body: unknown) => void;

/**
 * Requests and notes between the instances of one registry, over Redis pub/sub: each
 * instance listens on a channel of its own. Whoever may write the registry may speak here,
 * and nobody else: the bus adds no trust the registry does not already grant.
 */
export class InstanceBus {
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #self: string;
  readonly #log: Logger;
  readonly #waiting = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #onRequest: RequestHandler = () => Promise.reject(new MediaError('unimplemented', 'this instance answers no requests'));
  #onNote: NoteHandler = () => {};

  private constructor(pub: Redis, sub: Redis, self: string, log: Logger) {
    this.#pub = pub;
    this.#sub = sub;
    this.#self = self;
    this.#log = log;
    sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => this.#receive(message));
  }

  /** `redis`: the registry's connection; the bus publishes on it and listens on a duplicate. */
  static async open(redis: Redis, self: string, log: Logger): Promise<InstanceBus> {
    const sub = redis.duplicate();
    sub.on('error', () => {});
    await sub.subscribe(CHANNEL(self));
    return new InstanceBus(redis, sub, self, log.child({ component: 'instance-bus' }));
  }

  handle(opts: { request: RequestHandler; note: NoteHandler }): void {
    this.#onRequest = opts.request;
    this.#onNote = opts.note;
  }

  /** Asks another instance; its answer, or a MediaError (its own, or UNAVAILABLE when it did not answer in time). */
  request<T>(to: string, body: unknown, timeoutMs: number): Promise<T> {
    const id = randomUUID();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new MediaError('unavailable', `media instance ${to} did not answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#publish(to, { kind: 'request', from: this.#self, id, body }).catch((error: unknown) => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        this.#log.warn({ event: 'INSTANCE_BUS_FAILED', error, attributes: { 'instance.id': to } }, 'a request to another instance could not be sent');
        reject(new MediaError('unavailable', `media instance ${to} could not be reached`));
      });
    });
  }

  /** Tells another instance something it need not answer. */
  note(to: string, body: unknown): void {
    this.#publish(to, { kind: 'note', from: this.#self, body }).catch((error: unknown) =>
      this.#log.warn({ event: 'INSTANCE_BUS_FAILED', error, attributes: { 'instance.id': to } }, 'a note to another instance could not be sent'),
    );
  }

  close(): void {
    for (const w of this.#waiting.values()) {
      clearTimeout(w.timer);
      w.reject(new MediaError('unavailable', 'the media service is stopping'));
    }
    this.#waiting.clear();
    this.#sub.disconnect();
  }

  async #publish(to: string, e: Envelope): Promise<void> {
    await this.#pub.publish(CHANNEL(to), JSON.stringify(e));
  }

  #receive(message: Buffer): void {
    let e: Envelope;
    try {
      e = JSON.parse(message.toString('utf8')) as Envelope;
    } catch {
      return;
    }
    if (typeof e !== 'object' || e === null || typeof e.from !== 'string') return;
    switch (e.kind) {
      case 'reply': {
        const w = this.#waiting.get(e.id);
        if (!w) return;
        this.#waiting.delete(e.id);
        clearTimeout(w.timer);
        if (e.error) w.reject(new MediaError(e.error.code, e.error.message));
        else w.resolve(e.body);
        return;
      }
      case 'request':
        this.#onRequest(e.from, e.body).then(
          (body) => this.#publish(e.from, { kind: 'reply', from: this.#self, id: e.id, body }),
          (error: unknown) => {
            const m = error instanceof MediaError ? error : new MediaError('internal', 'the request failed on the other instance');
            return this.#publish(e.from, { kind: 'reply', from: this.#self, id: e.id, error: { code: m.code, message: m.message } });
          },
        ).catch(() => undefined);
        return;
      case 'note':
        try {
          this.#onNote(e.from, e.body);
        } catch (error) {
          this.#log.warn({ event: 'INSTANCE_BUS_NOTE_FAILED', error }, 'a note from another instance could not be handled');
        }
    }
  }
}
