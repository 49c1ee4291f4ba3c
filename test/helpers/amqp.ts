import amqp from 'amqplib';
import { randomUUID } from 'node:crypto';

export interface CapturedEvent {
  routingKey: string;
  persistent: boolean;
  body: Record<string, unknown>;
}

/** A real RabbitMQ consumer on a fresh exchange, so parallel runs never see each other's events. */
export async function captureEvents(url = 'amqp://guest:guest@127.0.0.1:5672'): Promise<{ exchange: string; events: CapturedEvent[]; close(): Promise<void> }> {
  const exchange = `sentiric_events_test_${randomUUID().slice(0, 8)}`;
  const conn = await amqp.connect(url);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  const q = await ch.assertQueue('', { exclusive: true, autoDelete: true });
  await ch.bindQueue(q.queue, exchange, '#');
  const events: CapturedEvent[] = [];
  await ch.consume(q.queue, (msg) => {
    if (!msg) return;
    events.push({ routingKey: msg.fields.routingKey, persistent: msg.properties.deliveryMode === 2, body: JSON.parse(msg.content.toString()) as Record<string, unknown> });
    ch.ack(msg);
  });
  return {
    exchange,
    events,
    async close() {
      await ch.deleteExchange(exchange).catch(() => undefined);
      await conn.close().catch(() => undefined);
    },
  };
}
