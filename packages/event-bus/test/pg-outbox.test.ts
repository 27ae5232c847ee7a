import { trace } from '@opentelemetry/api';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAppError } from '@bazaar/errors';
import { startTelemetry } from '@bazaar/telemetry';
import { eventually, testStack } from '@bazaar/testing';
import {
  createEventBus,
  enqueueEvents,
  outboxSchemaSql,
  startPgOutboxRelay,
  type EventBus,
  type PgOutboxRelay,
} from '../src/index';
import {
  Received,
  removeTopology,
  TEST_TYPE,
  testEvent,
  testLogger,
  uniqueName,
  validateTestEvent,
  waitUntilDrained,
  type TestEvent,
} from './broker-fixture';
import { dropDatabase, freshDatabase, testPool } from './database-fixture';

const url = testStack().rabbitmq;
const exchange = uniqueName('bus-test.events');
const database = 'event_bus_pg_outbox';
const groups: string[] = [];
let pool: pg.Pool;
let bus: EventBus;

beforeAll(async () => {
  pool = testPool({ connectionString: await freshDatabase(database), max: 12 });
  bus = createEventBus({ url, logger: testLogger, validate: validateTestEvent, exchange });
});

afterAll(async () => {
  await bus.close();
  await pool.end();
  await dropDatabase(database);
  await removeTopology(url, { groups, exchange });
});

/** A fresh outbox table and a consumer recording what reaches the broker. */
async function setUp(table: string): Promise<{ received: Received; group: string }> {
  await pool.query(outboxSchemaSql(table));
  const received = new Received();
  const group = uniqueName('bus-test.outbox');
  groups.push(group);
  await bus.consume({ group, handlers: { [TEST_TYPE]: received.handler }, prefetch: 200 });
  return { received, group };
}

async function inTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

async function unpublishedCount(table: string): Promise<number> {
  const { rows } = await pool.query<{ count: string }>(
    `SELECT count(*) FROM ${table} WHERE published_at IS NULL`,
  );
  return Number(rows[0]?.count);
}

function startRelay(table: string, options: { pool?: pg.Pool; pollIntervalMs?: number } = {}) {
  return startPgOutboxRelay({
    pool: options.pool ?? pool,
    bus,
    logger: testLogger,
    table,
    batchSize: 100,
    pollIntervalMs: options.pollIntervalMs ?? 200,
  });
}

describe('PostgreSQL outbox relay', () => {
  it('publishes what a committed transaction enqueued and never what a rolled-back one did', async () => {
    const table = 'outbox_commit';
    const { received } = await setUp(table);
    const relay = startRelay(table);
    const committed = testEvent(1);
    const rolledBack = testEvent(2);
    await inTransaction((client) =>
      enqueueEvents(client, [committed], { validate: validateTestEvent, table }),
    );
    await expect(
      inTransaction(async (client) => {
        await enqueueEvents(client, [rolledBack], { validate: validateTestEvent, table });
        throw new Error('business rule failed');
      }),
    ).rejects.toThrow('business rule failed');

    await received.waitFor(1);
    await eventually(async () => ((await unpublishedCount(table)) === 0 ? true : undefined));
    await relay.stop();
    expect(received.ids()).toEqual([committed.id]);
    const { rows } = await pool.query(`SELECT event_id, published_at FROM ${table}`);
    expect(rows).toEqual([{ event_id: committed.id, published_at: expect.any(Date) as Date }]);
  });

  it('publishes a row whose transaction commits after rows with higher ids were published', async () => {
    const table = 'outbox_out_of_order';
    const { received } = await setUp(table);
    const relay = startRelay(table);
    const early = await pool.connect();
    const late = testEvent(1);
    const first = testEvent(2);
    try {
      await early.query('BEGIN');
      await enqueueEvents(early, [late], { validate: validateTestEvent, table });
      await inTransaction((client) =>
        enqueueEvents(client, [first], { validate: validateTestEvent, table }),
      );
      await received.waitFor(1);
      await early.query('COMMIT');
    } finally {
      early.release();
    }

    await received.waitFor(2);
    await relay.stop();
    expect(received.ids()).toEqual([first.id, late.id]);
    const { rows } = await pool.query<{ id: string; event_id: string }>(
      `SELECT id, event_id FROM ${table} ORDER BY id`,
    );
    // The late row really has the lower id: a relay tracking "the last id published" would skip it.
    expect(rows.map((row) => row.event_id)).toEqual([late.id, first.id]);
  });

  it('is woken by NOTIFY at commit, not by its polling fallback', async () => {
    const table = 'outbox_notify';
    const { received } = await setUp(table);
    const relay = startRelay(table, { pollIntervalMs: 600_000 });
    await inTransaction((client) =>
      enqueueEvents(client, [testEvent(1)], { validate: validateTestEvent, table }),
    );
    await received.waitFor(1);
    // The relay now sleeps for ten minutes unless notified.
    await inTransaction((client) =>
      enqueueEvents(client, [testEvent(2)], { validate: validateTestEvent, table }),
    );
    await received.waitFor(2, 10_000);
    await relay.stop();
    expect(received.events.map((event) => event.data.n)).toEqual([1, 2]);
  });

  it('continues the trace of the request whose transaction enqueued the event', async () => {
    const table = 'outbox_trace';
    await pool.query(outboxSchemaSql(table));
    const telemetry = startTelemetry({ serviceName: 'outbox-trace-test' });
    try {
      const group = uniqueName('bus-test.outbox');
      groups.push(group);
      const traceIds: (string | undefined)[] = [];
      await bus.consume({
        group,
        handlers: {
          [TEST_TYPE]: () => {
            traceIds.push(trace.getActiveSpan()?.spanContext().traceId);
            return Promise.resolve();
          },
        },
      });
      const requestTraceId = await telemetry.tracer.startActiveSpan(
        'POST /v1/orders',
        async (span) => {
          await inTransaction((client) =>
            enqueueEvents(client, [testEvent(1)], { validate: validateTestEvent, table }),
          );
          span.end();
          return span.spanContext().traceId;
        },
      );
      // The relay runs outside any request.
      const relay = startRelay(table);
      await eventually(() => (traceIds.length === 1 ? true : undefined));
      await relay.stop();
      expect(traceIds).toEqual([requestTraceId]);
    } finally {
      await telemetry.shutdown();
    }
  });

  it('refuses to enqueue an invalid event', async () => {
    const table = 'outbox_invalid';
    await pool.query(outboxSchemaSql(table));
    const error: unknown = await inTransaction((client) =>
      enqueueEvents(client, [testEvent(1, { data: { n: 0.5 } })], {
        validate: validateTestEvent,
        table,
      }),
    ).catch((caught: unknown) => caught);
    expect(isAppError(error, 'VALIDATION_FAILED')).toBe(true);
    expect(await pool.query(`SELECT 1 FROM ${table}`)).toMatchObject({ rowCount: 0 });
  });

  it('two relay instances on one outbox publish every event exactly once between them', async () => {
    const table = 'outbox_two_relays';
    const { received, group } = await setUp(table);
    const otherPool = testPool({
      connectionString: testStack().postgresDatabase(database),
      max: 6,
    });
    const relays: PgOutboxRelay[] = [startRelay(table), startRelay(table, { pool: otherPool })];
    const total = 3000;
    const events: TestEvent[] = Array.from({ length: total }, (_, n) => testEvent(n));
    // Five writers commit transactions of 1–10 events while both relays run.
    let next = 0;
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        while (next < total) {
          const size = 1 + (next % 10);
          const slice = events.slice(next, next + size);
          next += size;
          await inTransaction((client) =>
            enqueueEvents(client, slice, { validate: validateTestEvent, table }),
          );
        }
      }),
    );

    await received.waitFor(total, 30_000);
    await eventually(async () => ((await unpublishedCount(table)) === 0 ? true : undefined));
    await Promise.all(relays.map((relay) => relay.stop()));
    await otherPool.end();
    // Everything the relays published is in the queue or consumed: once drained, duplicates would show.
    await waitUntilDrained(url, group);
    expect(received.events).toHaveLength(total);
    expect(new Set(received.ids())).toEqual(new Set(events.map((event) => event.id)));
    const [a, b] = relays.map((relay) => relay.publishedCount) as [number, number];
    expect(a + b).toBe(total);
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(0);
  });
});
