import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logging/logger.ts';
import { LogPublisher } from './log-publisher.ts';
import type { EventPublisher } from './types.ts';

/** RabbitMQ when a URL is configured, else events are only logged. Never waits for a broker. */
export async function createEventPublisher(opts: { config: Config['events']; logger: Logger; registry: Registry }): Promise<EventPublisher> {
  if (!opts.config.rabbitmq_url) return new LogPublisher(opts.logger);
  // The AMQP client is loaded only by a service that publishes to a broker.
  const { RabbitMqPublisher } = await import('./rabbitmq-publisher.ts');
  return RabbitMqPublisher.create({ url: opts.config.rabbitmq_url, exchange: opts.config.exchange, logger: opts.logger, registry: opts.registry });
}
