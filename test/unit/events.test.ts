import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Registry } from 'prom-client';
import { genericEvent, recordingAvailableEvent } from '../../src/events/types.ts';
import { LogPublisher } from '../../src/events/log-publisher.ts';
import { RabbitMqPublisher } from '../../src/events/rabbitmq-publisher.ts';
import { createEventPublisher } from '../../src/events/index.ts';
import { captureLogging } from '../helpers/capture-logging.ts';

/** A port nothing listens on, so a connection attempt is refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(address !== null && typeof address !== 'string');
  return address.port;
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('event shapes', () => {
  test('playback.finished is a GenericEvent whose payload_json is a JSON string', () => {
    const e = genericEvent('call.media.playback.finished', { traceId: 't-1', tenantId: 'tenant-a', payload: { callId: 'c-1', uri: 'file://a.wav' } });
    assert.equal(e.type, 'call.media.playback.finished');
    assert.match(e.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(Object.keys(e.body).sort(), ['event_type', 'payload_json', 'tenant_id', 'timestamp', 'trace_id']);
    assert.equal(e.body.event_type, 'call.media.playback.finished');
    assert.equal(e.body.trace_id, 't-1');
    assert.equal(e.body.tenant_id, 'tenant-a');
    assert.match(e.body.timestamp, ISO_8601);
    assert.equal(e.body.timestamp, e.createdAt.toISOString());
    assert.ok('payload_json' in e.body);
    assert.equal(typeof e.body.payload_json, 'string');
    assert.deepEqual(JSON.parse(e.body.payload_json), { callId: 'c-1', uri: 'file://a.wav' });
  });

  test('dtmf, session.timeout and session.closed carry their payloads', () => {
    const cases = [
      genericEvent('call.media.dtmf.received', { traceId: 't', tenantId: 'x', payload: { callId: 'c', digit: '#', durationMs: 120 } }),
      genericEvent('call.media.session.timeout', { traceId: 't', tenantId: 'x', payload: { callId: 'c', port: 10002, idleSeconds: 30 } }),
      genericEvent('call.media.session.closed', { traceId: 't', tenantId: 'x', payload: { callId: 'c', port: 10002, reason: 'released' } }),
    ];
    const payloads = cases.map((e) => {
      assert.equal(e.body.event_type, e.type);
      assert.ok('payload_json' in e.body);
      return JSON.parse(e.body.payload_json) as unknown;
    });
    assert.deepEqual(payloads, [
      { callId: 'c', digit: '#', durationMs: 120 },
      { callId: 'c', port: 10002, idleSeconds: 30 },
      { callId: 'c', port: 10002, reason: 'released' },
    ]);
  });

  test('each event gets its own id', () => {
    const make = () => genericEvent('call.media.dtmf.received', { traceId: 't', tenantId: 'x', payload: { callId: 'c', digit: '1', durationMs: 1 } });
    assert.notEqual(make().id, make().id);
  });

  test('call.recording.available has the platform shape, without a tenant field', () => {
    const e = recordingAvailableEvent({ traceId: 't-2', callId: 'c-2', tenantId: 'tenant-a', recordingUri: 's3://b/c-2.wav', publicUrl: 'https://x/c-2.wav' });
    assert.equal(e.type, 'call.recording.available');
    assert.deepEqual(e.body, {
      event_type: 'call.recording.available',
      trace_id: 't-2',
      call_id: 'c-2',
      timestamp: e.createdAt.toISOString(),
      recording_uri: 's3://b/c-2.wav',
      public_url: 'https://x/c-2.wav',
    });
  });
});

describe('LogPublisher', () => {
  test('writes each event as one PLATFORM_EVENT line with its type and body', async () => {
    const { logger, lines } = captureLogging();
    const publisher = new LogPublisher(logger);
    const e = genericEvent('call.media.session.closed', { traceId: 't-3', tenantId: 'tenant-a', payload: { callId: 'c-3', port: 10004, reason: 'shutdown' } });
    publisher.publish(e);
    await publisher.close();
    await publisher.close();

    assert.equal(lines.length, 1);
    const line = lines[0]!;
    assert.equal(line.event, 'PLATFORM_EVENT');
    assert.equal(line.level, 'info');
    const attributes = line.attributes as Record<string, unknown>;
    assert.equal(attributes['event.type'], 'call.media.session.closed');
    assert.equal(attributes['event.id'], e.id);
    assert.deepEqual(attributes['event.body'], e.body);
  });

  test('publish never throws, even when the log destination does', () => {
    const { logger } = captureLogging({
      write: () => {
        throw new Error('disk full');
      },
    });
    const publisher = new LogPublisher(logger);
    assert.doesNotThrow(() =>
      publisher.publish(genericEvent('call.media.dtmf.received', { traceId: 't', tenantId: 'x', payload: { callId: 'c', digit: '5', durationMs: 40 } })),
    );
  });
});

describe('createEventPublisher', () => {
  test('logs events when no RabbitMQ URL is configured', async () => {
    const { logger } = captureLogging();
    const publisher = await createEventPublisher({ config: { rabbitmq_url: '', exchange: 'sentiric_events' }, logger, registry: new Registry() });
    assert.ok(publisher instanceof LogPublisher);
    await publisher.close();
  });

  test('uses RabbitMQ when a URL is configured, without waiting for the broker', async () => {
    const { logger } = captureLogging();
    const registry = new Registry();
    const started = performance.now();
    const publisher = await createEventPublisher({
      config: { rabbitmq_url: `amqp://guest:guest@127.0.0.1:${await closedPort()}`, exchange: 'sentiric_events_unit' },
      logger,
      registry,
    });
    assert.ok(performance.now() - started < 200);
    assert.ok(publisher instanceof RabbitMqPublisher);
    assert.ok(registry.getSingleMetric('sentiric_media_events_published_total'));
    assert.ok(registry.getSingleMetric('sentiric_media_events_dropped_total'));
    assert.ok(registry.getSingleMetric('sentiric_media_events_buffered'));
    await publisher.close();
  });
});
