import { spawn } from 'node:child_process';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@bazaar/stack';
import { eventually, testStack } from '@bazaar/testing';
import {
  createEventBus,
  handleOnce,
  processedEventsSchemaSql,
  type EventBus,
  type HandleOnceResult,
} from '../src/index';
import {
  removeTopology,
  TEST_TYPE,
  testEvent,
  testLogger,
  uniqueName,
  validateTestEvent,
  waitUntilDrained,
} from './broker-fixture';
import { dropDatabase, freshDatabase, testPool } from './database-fixture';

const url = testStack().rabbitmq;
const exchange = uniqueName('bus-test.events');
const database = 'event_bus_idempotent';
const groups: string[] = [];
let databaseUrl: string;
let pool: pg.Pool;
let bus: EventBus;

beforeAll(async () => {
  databaseUrl = await freshDatabase(database);
  pool = testPool({ connectionString: databaseUrl, max: 8 });
  await pool.query(processedEventsSchemaSql());
  await pool.query('CREATE TABLE crash_effects (event_id text NOT NULL)');
  bus = createEventBus({ url, logger: testLogger, validate: validateTestEvent, exchange });
});

afterAll(async () => {
  await bus.close();
  await pool.end();
  await dropDatabase(database);
  await removeTopology(url, { groups, exchange });
});

async function effectCount(eventId: string): Promise<number> {
  const { rows } = await pool.query<{ count: string }>(
    'SELECT count(*) FROM crash_effects WHERE event_id = $1',
    [eventId],
  );
  return Number(rows[0]?.count);
}

describe('idempotent consumer', () => {
  it('a consumer that crashes between its effect and the ack: the redelivery is a duplicate, the effect happened once', async () => {
    const group = uniqueName('bus-test.crash');
    groups.push(group);
    // Declare the group's queues, so the event waits there for the consumer process.
    await (
      await bus.consume({ group, handlers: { [TEST_TYPE]: () => Promise.resolve() } })
    ).close();
    const event = testEvent(1);
    await bus.publish(event);

    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(repoRoot, 'packages/event-bus/test/crash-after-effect.fixture.ts'),
        url,
        databaseUrl,
        group,
        exchange,
      ],
      { cwd: repoRoot, env: {}, stdio: 'ignore' },
    );
    const exit = await new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    expect(exit).toBe('SIGKILL');
    expect(await effectCount(event.id)).toBe(1);

    const outcomes: { result: HandleOnceResult; redelivered: boolean }[] = [];
    const consumer = await bus.consume({
      group,
      handlers: {
        [TEST_TYPE]: async (delivered, delivery) => {
          const result = await handleOnce(pool, group, delivered.id, async (tx) => {
            await tx.query('INSERT INTO crash_effects (event_id) VALUES ($1)', [delivered.id]);
          });
          outcomes.push({ result, redelivered: delivery.redelivered });
        },
      },
    });
    // The queue may look empty while the redelivery is still being handled: wait for its outcome,
    // then for the queue to hold nothing more (a second delivery would show as a second outcome).
    await eventually(() => (outcomes.length > 0 ? true : undefined), {
      what: 'the redelivery handled',
    });
    await waitUntilDrained(url, group);
    await consumer.close();
    expect(outcomes).toEqual([{ result: 'duplicate', redelivered: true }]);
    expect(await effectCount(event.id)).toBe(1);
  });

  it('applies racing deliveries of one event once, and nothing of an effect that failed', async () => {
    const eventId = testEvent(1).id;
    const effect = async (tx: pg.PoolClient) => {
      await tx.query('INSERT INTO crash_effects (event_id) VALUES ($1)', [eventId]);
      await tx.query('SELECT pg_sleep(0.05)');
    };
    const failing = handleOnce(pool, 'bus-test.race', eventId, async (tx) => {
      await tx.query('INSERT INTO crash_effects (event_id) VALUES ($1)', [eventId]);
      throw new Error('effect failed');
    });
    await expect(failing).rejects.toThrow('effect failed');
    expect(await effectCount(eventId)).toBe(0);

    const results = await Promise.all(
      Array.from({ length: 5 }, () => handleOnce(pool, 'bus-test.race', eventId, effect)),
    );
    expect(results.filter((result) => result === 'processed')).toHaveLength(1);
    expect(results.filter((result) => result === 'duplicate')).toHaveLength(4);
    expect(await effectCount(eventId)).toBe(1);
    // Another consumer group applies its own effect for the same event.
    expect(await handleOnce(pool, 'bus-test.other', eventId, () => Promise.resolve())).toBe(
      'processed',
    );
  });
});
