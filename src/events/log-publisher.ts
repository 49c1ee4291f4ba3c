import type { Logger } from '../logging/logger.ts';
import type { EventPublisher, PlatformEvent } from './types.ts';

/** The default without a broker: each event becomes one log line, so nothing is silently lost. */
export class LogPublisher implements EventPublisher {
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log.child({ component: 'events' });
  }

  publish(event: PlatformEvent): void {
    try {
      this.#log.info({ event: 'PLATFORM_EVENT', attributes: { 'event.type': event.type, 'event.id': event.id, 'event.body': event.body } }, event.type);
    } catch {
      // A logger failure must not reach the media path that published the event.
    }
  }

  async close(): Promise<void> {}
}
