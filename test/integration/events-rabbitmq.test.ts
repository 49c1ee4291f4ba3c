import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { Registry } from 'prom-client';
import { RabbitMqPublisher } from '../../src/events/rabbitmq-publisher.ts';
import { genericEvent, recordingAvailableEvent, type PlatformEvent } from '../../src/events/types.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { captureLogging } from '../helpers/capture-logging.ts';

const BROKER_URL = 'amqp://guest:guest@127.0.0.1:5672';
const TEST_TIMEOUT = 20_000;

interface Received {
  routingKey: string;
  properties: amqp.MessageProperties;
  body: Record<string, unknown>;
}

/** A consumer connected straight to the broker (never through the proxy) on a fresh exchange. */
async function consumer(exchange: string, bindingKey: string): Promise<{ messages: Received[]; close(): Promise<void> }> {
  const conn = await amqp.connect(BROKER_URL);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  const q = await ch.assertQueue('', { exclusive: true, autoDelete: true });
  await ch.bindQueue(q.queue, exchange, bindingKey);
  const messages: Received[] = [];
  await ch.consume(q.queue, (msg) => {
    if (!msg) return;
    messages.push({ routingKey: msg.fields.routingKey, properties: msg.properties, body: JSON.parse(msg.content.toString()) as Record<string, unknown> });
    ch.ack(msg);
  });
  return {
    messages,
    async close() {
      await ch.deleteExchange(exchange).catch(() => undefined);
      await conn.close().catch(() => undefined);
    },
  };
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} is registered`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val))
    .reduce((sum, v) => sum + v.value, 0);
}

async function eventually<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function dtmf(callId: string, digit: string): PlatformEvent {
  return genericEvent('call.media.dtmf.received', { traceId: `trace-${digit}`, tenantId: 'tenant-a', payload: { callId, digit, durationMs: 80 } });
}

/** Message ids in order of first arrival: redeliveries after a reconnect are allowed, gaps are not. */
function firstArrivals(messages: Received[]): string[] {
  const seen = new Set<string>();
  for (const m of messages) if (m.properties.messageId) seen.add(String(m.properties.messageId));
  return [...seen];
}

function exchangeName(): string {
  return `sentiric_events_test_${randomUUID().slice(0, 8)}`;
}

describe('RabbitMQ event publisher (real broker)', () => {
  test('sends a playback.finished GenericEvent as persistent JSON, routed by its type', { timeout: TEST_TIMEOUT }, async (t) => {
    const exchange = exchangeName();
    const media = await consumer(exchange, 'call.media.#');
    const recordings = await consumer(exchange, 'call.recording.#');
    t.after(() => Promise.all([media.close(), recordings.close()]));
    const registry = new Registry();
    const { logger } = captureLogging({ level: 'debug' });
    const publisher = await RabbitMqPublisher.create({ url: BROKER_URL, exchange, logger, registry });
    t.after(() => publisher.close());

    const playback = genericEvent('call.media.playback.finished', {
      traceId: 'trace-1',
      tenantId: 'tenant-a',
      payload: { callId: 'call-1', uri: 'file://welcome.wav' },
    });
    const recording = recordingAvailableEvent({
      traceId: 'trace-2',
      callId: 'call-1',
      recordingUri: 's3://bucket/call-1.wav',
      publicUrl: 'https://example.test/call-1.wav',
    });
    publisher.publish(playback);
    publisher.publish(recording);

    await eventually(() => recordings.messages.length === 1 && media.messages.length >= 1, 10_000, 'both events');
    await sleep(200);
    assert.equal(media.messages.length, 1, 'only call.media.* reaches the call.media.# binding');
    const msg = media.messages[0]!;
    assert.equal(msg.routingKey, 'call.media.playback.finished');
    assert.equal(msg.properties.deliveryMode, 2, 'persistent');
    assert.equal(msg.properties.contentType, 'application/json');
    assert.equal(msg.properties.messageId, playback.id);
    assert.equal(typeof msg.properties.timestamp, 'number');
    assert.ok(Math.abs((msg.properties.timestamp as number) - Date.now() / 1000) < 60, 'timestamp is in seconds, near now');
    assert.deepEqual(Object.keys(msg.body).sort(), ['event_type', 'payload_json', 'tenant_id', 'timestamp', 'trace_id']);
    assert.equal(msg.body.event_type, 'call.media.playback.finished');
    assert.equal(msg.body.trace_id, 'trace-1');
    assert.equal(msg.body.tenant_id, 'tenant-a');
    assert.equal(new Date(String(msg.body.timestamp)).toISOString(), msg.body.timestamp);
    assert.equal(typeof msg.body.payload_json, 'string');
    assert.deepEqual(JSON.parse(msg.body.payload_json as string), { callId: 'call-1', uri: 'file://welcome.wav' });

    const rec = recordings.messages[0]!;
    assert.equal(rec.routingKey, 'call.recording.available');
    assert.equal(rec.properties.deliveryMode, 2);
    assert.deepEqual(rec.body, {
      event_type: 'call.recording.available',
      trace_id: 'trace-2',
      call_id: 'call-1',
      timestamp: (recording.body as { timestamp: string }).timestamp,
      recording_uri: 's3://bucket/call-1.wav',
      public_url: 'https://example.test/call-1.wav',
    });

    // The broker may deliver before it confirms: the counter follows the confirm.
    await eventually(async () => (await metricValue(registry, 'sentiric_media_events_buffered')) === 0, 5000, 'both confirms');
    assert.equal(await metricValue(registry, 'sentiric_media_events_published_total', { type: 'call.media.playback.finished' }), 1);
    assert.equal(await metricValue(registry, 'sentiric_media_events_published_total', { type: 'call.recording.available' }), 1);
    assert.equal(await metricValue(registry, 'sentiric_media_events_buffered'), 0);
  });

  test('starts while the broker is unreachable, buffers, and delivers in order once it is back', { timeout: TEST_TIMEOUT }, async (t) => {
    const exchange = exchangeName();
    const sink = await consumer(exchange, 'call.media.#');
    t.after(() => sink.close());
    const proxy = new TcpProxy({ targetPort: 5672, port: await TcpProxy.freePort() });
    t.after(() => proxy.stop());
    const registry = new Registry();
    const { logger, lines } = captureLogging({ level: 'debug' });

    const started = performance.now();
    const publisher = await RabbitMqPublisher.create({ url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, exchange, logger, registry });
    t.after(() => publisher.close());
    assert.ok(performance.now() - started < 200, 'create() does not wait for the broker');

    const sent = ['1', '2', '3'].map((d) => dtmf('call-down', d));
    for (const e of sent) publisher.publish(e);
    assert.equal(await metricValue(registry, 'sentiric_media_events_buffered'), 3);
    // Long enough for a few failed attempts, so "down" logging is exercised past the first one.
    await sleep(1500);
    assert.equal(sink.messages.length, 0);
    await proxy.start();

    await eventually(() => sink.messages.length >= 3, 12_000, '3 events after the broker came back');
    assert.deepEqual(firstArrivals(sink.messages), sent.map((e) => e.id));
    assert.deepEqual(sink.messages.slice(0, 3).map((m) => JSON.parse(m.body.payload_json as string).digit), ['1', '2', '3']);
    await eventually(async () => (await metricValue(registry, 'sentiric_media_events_buffered')) === 0, 5000, 'the confirms');
    assert.equal(await metricValue(registry, 'sentiric_media_events_published_total'), 3);
    const atWarnOrInfo = lines.filter((l) => l.level !== 'debug' && String(l.event).startsWith('EVENTS_')).map((l) => l.event);
    assert.deepEqual(atWarnOrInfo, ['EVENTS_UNAVAILABLE', 'EVENTS_CONNECTED'], 'one line per transition; retries only at debug');
    assert.ok(lines.some((l) => l.event === 'EVENTS_RETRY_FAILED' && l.level === 'debug'), 'retries are logged at debug');
    assert.ok(!JSON.stringify(lines).includes('guest:guest'), 'the URL and its credentials are never logged');
  });

  test('a connection cut mid-stream loses nothing: events are re-sent after reconnecting', { timeout: TEST_TIMEOUT }, async (t) => {
    const exchange = exchangeName();
    const sink = await consumer(exchange, 'call.media.#');
    t.after(() => sink.close());
    const proxy = new TcpProxy({ targetPort: 5672 });
    await proxy.start();
    t.after(() => proxy.stop());
    const registry = new Registry();
    const { logger, lines } = captureLogging({ level: 'debug' });
    const publisher = await RabbitMqPublisher.create({ url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, exchange, logger, registry });
    t.after(() => publisher.close());

    const first = dtmf('call-mid', '0');
    publisher.publish(first);
    await eventually(() => sink.messages.length >= 1, 10_000, 'the first event');

    const during = ['1', '2', '3', '4', '5'].map((d) => dtmf('call-mid', d));
    // Two go out on the live connection and are cut in the same tick, before the proxy could
    // forward them: sent but never confirmed, so they must be sent again.
    publisher.publish(during[0]!);
    publisher.publish(during[1]!);
    const stopping = proxy.stop();
    for (const e of during.slice(2)) publisher.publish(e);
    await stopping;
    await sleep(300);
    await proxy.start();

    const expected = [first, ...during].map((e) => e.id);
    await eventually(() => firstArrivals(sink.messages).length >= expected.length, 15_000, 'all 6 events');
    assert.deepEqual(firstArrivals(sink.messages), expected);
    assert.ok(proxy.connections >= 2, 'the publisher reconnected');
    assert.equal(lines.filter((l) => l.event === 'EVENTS_DISCONNECTED').length, 1);
    assert.equal(lines.filter((l) => l.event === 'EVENTS_CONNECTED').length, 2);
    assert.equal(await metricValue(registry, 'sentiric_media_events_dropped_total'), 0);
  });

  test('a full buffer drops the oldest events and counts them; the newest arrive', { timeout: TEST_TIMEOUT }, async (t) => {
    const exchange = exchangeName();
    const sink = await consumer(exchange, 'call.media.#');
    t.after(() => sink.close());
    const proxy = new TcpProxy({ targetPort: 5672, port: await TcpProxy.freePort() });
    t.after(() => proxy.stop());
    const registry = new Registry();
    const { logger, lines } = captureLogging({ level: 'debug' });
    const publisher = await RabbitMqPublisher.create({
      url: `amqp://guest:guest@127.0.0.1:${proxy.port}`,
      exchange,
      logger,
      registry,
      maxBuffered: 5,
    });
    t.after(() => publisher.close());

    const sent = ['0', '1', '2', '3', '4', '5', '6', '7'].map((d) => dtmf('call-full', d));
    for (const e of sent) publisher.publish(e);
    assert.equal(await metricValue(registry, 'sentiric_media_events_dropped_total'), 3);
    assert.equal(await metricValue(registry, 'sentiric_media_events_buffered'), 5);
    assert.equal(lines.filter((l) => l.event === 'EVENTS_BUFFER_FULL').length, 1, 'overflow is logged once, not per event');

    await proxy.start();
    await eventually(() => sink.messages.length >= 5, 12_000, 'the 5 newest events');
    await sleep(300);
    assert.deepEqual(firstArrivals(sink.messages), sent.slice(3).map((e) => e.id));
    assert.equal(await metricValue(registry, 'sentiric_media_events_dropped_total'), 3);
  });

  test('close() flushes what is buffered, then closes; it is idempotent', { timeout: TEST_TIMEOUT }, async (t) => {
    const exchange = exchangeName();
    const sink = await consumer(exchange, 'call.media.#');
    t.after(() => sink.close());
    const registry = new Registry();
    const { logger } = captureLogging({ level: 'debug' });
    const publisher = await RabbitMqPublisher.create({ url: BROKER_URL, exchange, logger, registry });

    // Published before the first connection is even up: close() must wait for it, then send.
    const sent = Array.from({ length: 50 }, (_, i) => dtmf('call-close', String(i % 10)));
    for (const e of sent) publisher.publish(e);
    const closing = publisher.close();
    assert.equal(publisher.close(), closing, 'a second close() shares the first');
    await closing;

    assert.equal(await metricValue(registry, 'sentiric_media_events_published_total'), 50);
    await eventually(() => sink.messages.length >= 50, 5000, 'all events flushed by close()');
    assert.deepEqual(firstArrivals(sink.messages), sent.map((e) => e.id));
    assert.doesNotThrow(() => publisher.publish(dtmf('call-close', '9')));
    assert.equal(await metricValue(registry, 'sentiric_media_events_dropped_total'), 1, 'an event after close() is counted as dropped');
  });

  test('close() with the broker away gives up within its bound and counts the unsent events', { timeout: TEST_TIMEOUT }, async (t) => {
    const proxy = new TcpProxy({ targetPort: 5672, port: await TcpProxy.freePort() });
    t.after(() => proxy.stop());
    const registry = new Registry();
    const { logger, lines } = captureLogging({ level: 'debug' });
    const publisher = await RabbitMqPublisher.create({ url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, exchange: exchangeName(), logger, registry });
    for (const d of ['1', '2']) publisher.publish(dtmf('call-away', d));

    const started = performance.now();
    await publisher.close();
    assert.ok(performance.now() - started < 3000, 'close() is bounded');
    assert.equal(await metricValue(registry, 'sentiric_media_events_dropped_total'), 2);
    assert.equal(await metricValue(registry, 'sentiric_media_events_buffered'), 0);
    assert.ok(lines.some((l) => l.event === 'EVENTS_UNSENT' && (l.attributes as Record<string, unknown>)['events.unsent'] === 2));

    // Nothing reconnects after close(): the proxy coming up sees no connection.
    await proxy.start();
    await sleep(1200);
    assert.equal(proxy.connections, 0);
  });
});
