// 50,000 events, duplicates included, published to the bazaar.events exchange of a real RabbitMQ with
// their routing keys (a private broker: on the shared test stack every other service's consumers would
// get them too) into a DuckDB warehouse: every distinct event exactly once, facts and sums equal to
// what the generated events say, and the HTTP API (real admin tokens from the test stack's users
// service) reporting the same numbers.
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { EventBus } from '@bazaar/event-bus';
import { startTelemetry } from '@bazaar/telemetry';
import { eventually, startPrivateServers, testStack, type PrivateServers } from '@bazaar/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app';
import { readConfig } from '../src/config';
import { startEventsConsumer, type EventsConsumer } from '../src/events.consumer';
import type { Summary, Warehouse } from '../src/warehouse';
import {
  adminToken,
  customerToken,
  logger,
  openTestWarehouse,
  publishAll,
  queueDepths,
  tempDir,
  testBus,
  uniqueGroup,
} from './analytics.fixture';
import { expectedOf, generateEvents, withDuplicates, type Expected } from './events.fixture';

const PUBLISHED = 50_000;
const DUPLICATES = 6_000;

describe('analytics ingestion from the real broker', () => {
  const group = uniqueGroup();
  const telemetry = startTelemetry({ serviceName: 'analytics-test' });
  let dir: { dir: string; remove: () => Promise<void> };
  let file: string;
  let bus: EventBus;
  let warehouse: Warehouse;
  let consumer: EventsConsumer | undefined;
  let expected: Expected;
  let app: FastifyInstance | undefined;
  let servers: PrivateServers;
  const broker = () => servers.urls.rabbitmq;

  beforeAll(async () => {
    dir = await tempDir();
    file = path.join(dir.dir, 'nested', 'warehouse.duckdb');
    servers = await startPrivateServers(['rabbitmq']);
    bus = testBus('analytics-ingest-test', servers.urls.rabbitmq);
    warehouse = await openTestWarehouse(file);
  });

  afterAll(async () => {
    await app?.close();
    await consumer?.close();
    await warehouse.close();
    await bus.close();
    await servers.close();
    await dir.remove();
  });

  it('stores 50,000 published events (with duplicates) exactly once, with exact counts and sums', async () => {
    const distinct = generateEvents(PUBLISHED - DUPLICATES, 8);
    const stream = withDuplicates(distinct, PUBLISHED - distinct.length, 9);
    expect(stream).toHaveLength(PUBLISHED);
    expected = expectedOf(distinct);
    expect(expected.events).toBe(distinct.length);

    consumer = await startEventsConsumer({
      bus,
      warehouse,
      logger,
      meter: telemetry.meter,
      group,
      batchMaxEvents: 2_000,
      batchMaxWaitMs: 100,
      prefetch: 4_000,
    });
    await publishAll(bus, stream);

    await eventually(
      async () =>
        (await warehouse.summary(allTime())).events === expected.events ? true : undefined,
      { timeoutMs: 180_000, intervalMs: 500, what: `${expected.events} events in the warehouse` },
    );
    // Everything delivered and written (duplicates arriving last must not add rows).
    await eventually(
      async () => ((await queueDepths(group, broker())).work === 0 ? true : undefined),
      {
        timeoutMs: 60_000,
        what: 'the work queue drained',
      },
    );
    await consumer.close();
    consumer = undefined;
    expect(await queueDepths(group, broker())).toEqual({ work: 0, dlq: 0 });

    const summary = await warehouse.summary(allTime());
    expect(summary).toEqual({
      events: expected.events,
      ordersPlaced: expected.ordersPlaced,
      ordersConfirmed: expected.ordersConfirmed,
      ordersCancelled: expected.ordersCancelled,
      paymentsFailed: expected.paymentsFailed,
      revenue: expected.revenue,
      captured: expected.captured,
      refunded: expected.refunded,
    } satisfies Summary);
    expect(expected.revenue.map((money) => money.currency)).toEqual(['EUR', 'USD']);

    const cancellations = await warehouse.cancellations(allTime());
    expect(Object.fromEntries(cancellations.map((item) => [item.reason, item.count]))).toEqual(
      expected.cancellations,
    );
    const conversion = await warehouse.conversion(allTime());
    expect(conversion).toEqual({
      placed: expected.ordersPlaced,
      confirmed: expected.ordersConfirmed,
      cancelled: expected.ordersCancelled,
    });
    const top = await warehouse.topProducts(allTime(), 100);
    const quantities = new Map<string, number>();
    for (const item of top) {
      quantities.set(item.productId, (quantities.get(item.productId) ?? 0) + item.quantity);
    }
    expect(quantities).toEqual(expected.productQuantities);
    const series = await warehouse.ordersOverTime(
      { from: new Date('2026-01-10T00:00:00Z'), to: new Date('2026-01-12T00:00:00Z') },
      'hour',
    );
    expect(series).toHaveLength(48);
    expect(
      new Map(series.filter((b) => b.ordersPlaced > 0).map((b) => [b.start, b.ordersPlaced])),
    ).toEqual(expected.placedPerHour);
  });

  it('agrees with an independent SQL recomputation over the raw events', async () => {
    await warehouse.close();
    const instance = await DuckDBInstance.create(file);
    try {
      const connection = await instance.connect();
      const read = async (sql: string) =>
        (await connection.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
      const [raw] = await read(`
        SELECT count(*) AS events, count(DISTINCT event_id) AS ids,
               count(*) FILTER (WHERE type = 'order.placed.v1') AS placed,
               count(*) FILTER (WHERE type = 'order.confirmed.v1') AS confirmed,
               count(*) FILTER (WHERE type = 'order.cancelled.v1') AS cancelled
        FROM raw_events`);
      expect(raw).toEqual({
        events: BigInt(expected.events),
        ids: BigInt(expected.events),
        placed: BigInt(expected.ordersPlaced),
        confirmed: BigInt(expected.ordersConfirmed),
        cancelled: BigInt(expected.ordersCancelled),
      });
      const sums = await read(`
        SELECT envelope->>'$.data.amount.currency' AS currency,
               CAST(sum(CAST(envelope->>'$.data.amount.amount' AS BIGINT))
                 FILTER (WHERE type = 'payment.captured.v1') AS BIGINT) AS captured,
               CAST(coalesce(sum(CAST(envelope->>'$.data.amount.amount' AS BIGINT))
                 FILTER (WHERE type = 'payment.refunded.v1'), 0) AS BIGINT) AS refunded
        FROM raw_events WHERE type IN ('payment.captured.v1', 'payment.refunded.v1')
        GROUP BY 1 ORDER BY 1`);
      expect(
        sums.map((row) => ({
          amount: Number(row.captured) - Number(row.refunded),
          currency: row.currency,
        })),
      ).toEqual(expected.revenue);
      const [facts] = await read(`
        SELECT (SELECT count(*) FROM order_facts) AS orders,
               (SELECT count(*) FROM payment_facts) AS payments,
               (SELECT count(DISTINCT event_id) FROM order_facts) AS order_ids`);
      const paymentEvents = await read(
        `SELECT count(*) AS n FROM raw_events WHERE type LIKE 'payment.%'`,
      );
      expect(facts?.orders).toBe(
        BigInt(expected.ordersPlaced + expected.ordersConfirmed + expected.ordersCancelled),
      );
      expect(facts?.order_ids).toBe(facts?.orders);
      expect(facts?.payments).toBe(paymentEvents[0]?.n);
      connection.closeSync();
    } finally {
      instance.closeSync();
    }
    warehouse = await openTestWarehouse(file);
  });

  it('serves the same numbers over HTTP to an admin, and refuses everyone else', async () => {
    const config = readConfig({
      NODE_ENV: 'test',
      PORT: '0',
      LOG_LEVEL: 'silent',
      RABBITMQ_URL: testStack().rabbitmq,
      JWKS_URL: `${testStack().url('users')}/.well-known/jwks.json`,
      WAREHOUSE_PATH: file,
    });
    app = buildApp({ config, logger, telemetry, warehouse });
    const admin = { authorization: `Bearer ${await adminToken()}` };

    const summary = await app.inject({ url: '/v1/analytics/summary', headers: admin });
    expect(summary.statusCode).toBe(200);
    expect(summary.json()).toMatchObject({
      events: expected.events,
      ordersConfirmed: expected.ordersConfirmed,
      ordersCancelled: expected.ordersCancelled,
      revenue: expected.revenue,
      conversionRate:
        Math.round((expected.ordersConfirmed / expected.ordersPlaced) * 10_000) / 10_000,
    });

    // Only the first day: fewer orders than in total, more than none.
    const day = await app.inject({
      url: '/v1/analytics/summary?from=2026-01-10T00:00:00Z&to=2026-01-11T00:00:00Z',
      headers: admin,
    });
    const dayPlaced = [...expected.placedPerHour]
      .filter(([hour]) => hour < '2026-01-11')
      .reduce((sum, [, count]) => sum + count, 0);
    expect(day.json()).toMatchObject({ ordersPlaced: dayPlaced, from: '2026-01-10T00:00:00.000Z' });

    const series = await app.inject({
      url: '/v1/analytics/orders/timeseries?interval=day&from=2026-01-10T00:00:00Z&to=2026-01-12T00:00:00Z',
      headers: admin,
    });
    expect(series.statusCode).toBe(200);
    const days = series.json<{ items: { start: string; ordersPlaced: number }[] }>().items;
    expect(days.map((b) => b.start)).toEqual([
      '2026-01-10T00:00:00.000Z',
      '2026-01-11T00:00:00.000Z',
    ]);
    expect(days.reduce((sum, b) => sum + b.ordersPlaced, 0)).toBe(expected.ordersPlaced);

    for (const url of [
      '/v1/analytics/conversion',
      '/v1/analytics/cancellations',
      '/v1/analytics/top-products?limit=5',
    ]) {
      const reply = await app.inject({ url, headers: admin });
      expect(reply.statusCode, url).toBe(200);
    }
    const top = await app.inject({ url: '/v1/analytics/top-products?limit=3', headers: admin });
    expect(top.json<{ items: unknown[] }>().items).toHaveLength(3);

    const invalid = await app.inject({
      url: '/v1/analytics/summary?from=yesterday&to=2026-01-01T00:00:00Z',
      headers: admin,
    });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.headers['content-type']).toContain('application/problem+json');
    expect(invalid.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ path: '/querystring/from' }],
    });
    const inverted = await app.inject({
      url: '/v1/analytics/conversion?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z',
      headers: admin,
    });
    expect(inverted.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    const tooLong = await app.inject({
      url: '/v1/analytics/orders/timeseries?interval=hour&from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z',
      headers: admin,
    });
    expect(tooLong.statusCode).toBe(400);
    const unknownParameter = await app.inject({
      url: '/v1/analytics/summary?since=2026-01-01T00:00:00Z',
      headers: admin,
    });
    expect(unknownParameter.statusCode).toBe(400);
    const badLimit = await app.inject({
      url: '/v1/analytics/top-products?limit=1000',
      headers: admin,
    });
    expect(badLimit.statusCode).toBe(400);

    const anonymous = await app.inject({ url: '/v1/analytics/summary' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
    const customer = await app.inject({
      url: '/v1/analytics/summary',
      headers: { authorization: `Bearer ${await customerToken()}` },
    });
    expect(customer.statusCode).toBe(403);
    expect(customer.json()).toMatchObject({ code: 'FORBIDDEN' });
  });
});

function allTime() {
  return { from: new Date('2000-01-01T00:00:00Z'), to: new Date('2100-01-01T00:00:00Z') };
}
