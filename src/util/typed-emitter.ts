import { EventEmitter } from 'node:events';
import type { Logger } from '../logging/logger.ts';

type EventMap = Record<string, unknown[]>;

/**
 * An EventEmitter whose events are typed, and whose emit isolates listener failures: a
 * throwing listener is logged and never breaks the emitter's own control flow.
 */
export class TypedEmitter<E extends EventMap> {
  readonly #ee = new EventEmitter();
  readonly #log: Logger | undefined;

  constructor(log?: Logger) {
    this.#log = log;
    this.#ee.setMaxListeners(Infinity);
  }

  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  safeEmit<K extends keyof E & string>(event: K, ...args: E[K]): void {
    for (const listener of this.#ee.listeners(event)) {
      try {
        (listener as (...a: E[K]) => void)(...args);
      } catch (err) {
        this.#log?.error({ event: 'LISTENER_FAILED', error: err, attributes: { 'event.name': event } }, 'event listener threw');
      }
    }
  }

  removeAllListeners(): void {
    this.#ee.removeAllListeners();
  }
}
