import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type EventTypes, type OrderPlacedV1 } from '@bazaar/contracts';
import { isAppError } from '@bazaar/errors';
import { startTelemetry, type Telemetry } from '@bazaar/telemetry';
import { eventually, testStack } from '@bazaar/testing';
import { createEventBus, enqueueEvents, openDeadLetterAdmin, type EventBus } from '../src/index';
import {
  Received,
  removeTopology,
  TEST_TYPE,
  testEvent,
  testLogger,
  uniqueName,
  validateTestEvent,
} from './broker-fixture';

const url = testStack().rabbitmq;
const exchange = uniqueName('bus-test.events');
const groups: string[] = [];
let telemetry: Telemetry;
let bus: EventBus;

function newGroup(): string {
  const group = uniqueName('bus-test.publish');
  groups.push(group);
  return group;
}

beforeAll(() => {
  telemetry = startTelemetry({ serviceName: 'event-bus-test' });
  bus = createEventBus({
    url,
    logger: testLogger,
    validate: validateTestEvent,
    exchange,
    name: 'event-bus-test',
  });
});

afterAll(async () => {
  await bus.close();
  await removeTopology(url, { groups, exchange });
  await telemetry.shutdown();
});

describe('publish → consume', () => {
  it('delivers a confirmed event to the group bound to its type, in the publisher’s trace', async () => {
    const received = new Received();
    const traceIds: (string | undefined)[] = [];
    const consumer = await bus.consume({
      group: newGroup(),
      handlers: {
        [TEST_TYPE]: async (event) => {
          traceIds.push(trace.getActiveSpan()?.spanContext().traceId);
          await received.handler(event as never);
        },
      },
    });
    const event = testEvent(1);
    const publisherTraceId = await telemetry.tracer.startActiveSpan('checkout', async (span) => {
      await bus.publish(event);
      span.end();
      return span.spanContext().traceId;
    });

    const [delivered] = await received.waitFor(1);
    expect(delivered).toEqual(event);
    expect(traceIds).toEqual([publisherTraceId]);
    expect(bus.isReady).toBe(true);
    await consumer.close();
  });

  it('publishes a batch with one wait for all confirms, and every event arrives once', async () => {
    const received = new Received();
    const consumer = await bus.consume({
      group: newGroup(),
      handlers: { [TEST_TYPE]: received.handler },
      prefetch: 200,
    });
    const events = Array.from({ length: 2000 }, (_, n) => testEvent(n));

    const results = await bus.publishBatch(events.map((event) => ({ event })));

    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(2000);
    await received.waitFor(2000);
    expect(new Set(received.ids())).toEqual(new Set(events.map((event) => event.id)));
    expect(received.events).toHaveLength(2000);
    await consumer.close();
  });

  it('refuses an invalid event before sending anything, and reports each batch member apart', async () => {
    const invalid = testEvent(1, { data: { n: 1.5 } });
    const error: unknown = await bus.publish(invalid).catch((caught: unknown) => caught);
    expect(isAppError(error, 'VALIDATION_FAILED')).toBe(true);
    expect((error as Error).message).toContain('/data/n: must be integer');

    const results = await bus.publishBatch([
      { event: testEvent(1) },
      { event: { ...testEvent(2), type: 'Not A Type' } },
    ]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected']);
  });

  it('dead-letters invalid payloads with the reason and keeps consuming', async () => {
    const group = newGroup();
    const received = new Received();
    const consumer = await bus.consume({
      group,
      handlers: { [TEST_TYPE]: received.handler },
    });
    // Someone else's publisher, without the bus's validation.
    const model = await connect(url);
    const channel = await model.createConfirmChannel();
    channel.publish(exchange, TEST_TYPE, Buffer.from('{not json'), { messageId: 'raw-1' });
    channel.publish(
      exchange,
      TEST_TYPE,
      Buffer.from(JSON.stringify(testEvent(0, { id: 'raw-2', data: { n: 'x' } as never }))),
      {
        messageId: 'raw-2',
      },
    );
    await channel.waitForConfirms();
    await model.close();
    const valid = testEvent(7);
    await bus.publish(valid);

    await received.waitFor(1);
    expect(received.ids()).toEqual([valid.id]);
    const admin = await openDeadLetterAdmin(url);
    try {
      const letters = await eventually(async () => {
        const list = await admin.list(group);
        return list.length === 2 ? list : undefined;
      });
      const byId = new Map(letters.map((letter) => [letter.eventId, letter]));
      expect(byId.get('raw-1')).toMatchObject({ reason: 'invalid', attempts: 1 });
      expect(byId.get('raw-1')?.error).toMatch(/^body is not JSON/);
      expect(byId.get('raw-2')).toMatchObject({
        reason: 'invalid',
        error: 'invalid event: /data/n: must be integer',
        type: TEST_TYPE,
      });
      // Listing leaves them in place.
      expect(await admin.list(group)).toHaveLength(2);
    } finally {
      await admin.close();
    }
    await consumer.close();
  });

  it('counts published, confirmed, consumed and dead-lettered messages, and reports consumer lag', async () => {
    const group = newGroup();
    const received = new Received();
    const consumer = await bus.consume({
      group,
      handlers: { [TEST_TYPE]: received.handler },
      lagPollMs: 100,
    });
    await bus.publishBatch([1, 2, 3].map((n) => ({ event: testEvent(n) })));
    await received.waitFor(3);

    const body = await eventually(async () => {
      const text = (await telemetry.renderMetrics()).body;
      return text.includes(`messaging_consumer_lag{messaging_consumer_group_name="${group}"`)
        ? text
        : undefined;
    });
    const sample = (family: string, labels = '') =>
      Number(
        body
          .split('\n')
          .find((line) => line.startsWith(`${family}{`) && line.includes(labels))
          ?.split(' ')
          .at(-1),
      );
    // This file's publishes so far: 1 + 2000 + 1 + 1 + 3 valid, 2 refused as invalid.
    expect(sample('messaging_client_sent_messages_total')).toBe(2006);
    expect(sample('messaging_client_confirmed_messages_total')).toBe(2006);
    expect(sample('messaging_client_publish_failures_total')).toBe(2);
    expect(
      sample(
        'messaging_client_consumed_messages_total',
        `messaging_consumer_group_name="${group}"`,
      ),
    ).toBe(3);
    expect(
      sample(
        'messaging_client_dead_lettered_messages_total',
        'bazaar_dead_letter_reason="invalid"',
      ),
    ).toBe(2);
    expect(sample('messaging_consumer_lag', `messaging_consumer_group_name="${group}"`)).toBe(0);
    expect(body).toContain('# TYPE messaging_process_duration_seconds histogram');
    await consumer.close();
  });

  it('checks events against the contracts by default and continues the trace of the envelope', async () => {
    const contractBus = createEventBus({
      url,
      logger: testLogger,
      exchange,
      name: 'event-bus-test',
    });
    try {
      const group = newGroup();
      const received: { event: OrderPlacedV1; traceId: string | undefined }[] = [];
      const consumer = await contractBus.consume<EventTypes>({
        group,
        handlers: {
          'order.placed.v1': (event) => {
            // Typed by the contracts: `event.data.total.amount` is a number.
            received.push({ event, traceId: trace.getActiveSpan()?.spanContext().traceId });
            return Promise.resolve();
          },
        },
      });
      const traceId = randomUUID().replaceAll('-', '');
      const placed = createEvent('order.placed.v1', {
        source: '/orders',
        subject: 'ord_01J9Z4A7B8C9D0E1F2G3H4J5K6',
        traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
        data: {
          orderId: 'ord_01J9Z4A7B8C9D0E1F2G3H4J5K6',
          userId: 'usr_01J9Z3K4M5N6P7Q8R9S0T1V2W3',
          items: [
            {
              productId: 'prd_01J9YTEA0KETTLE00000000000',
              name: 'Kettle',
              quantity: 1,
              unitPrice: { amount: 3999, currency: 'USD' },
            },
          ],
          total: { amount: 3999, currency: 'USD' },
          paymentToken: 'tok_visa',
          placedAt: '2025-01-31T10:00:00.000Z',
          deadline: '2025-01-31T10:00:30.000Z',
        },
      });
      await contractBus.publish(placed);
      const broken = {
        ...placed,
        id: randomUUID(),
        data: { ...placed.data, total: { amount: -1, currency: 'USD' } },
      };
      const refused: unknown = await contractBus.publish(broken).catch((caught: unknown) => caught);
      expect(isAppError(refused, 'VALIDATION_FAILED')).toBe(true);
      await expect(
        enqueueEvents({ query: () => Promise.reject(new Error('not reached')) }, [broken]),
      ).rejects.toThrow(/failed validation/);

      await eventually(() => (received.length === 1 ? true : undefined));
      expect(received).toEqual([{ event: placed, traceId }]);
      await consumer.close();
    } finally {
      await contractBus.close();
    }
  });
});
