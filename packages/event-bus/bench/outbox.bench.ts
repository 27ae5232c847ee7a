import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, type ConsumeMessage } from 'amqplib';
import pg from 'pg';
import { format, resolveConfig } from 'prettier';
import { createEvent, type EventTypes } from '@bazaar/contracts';
import { createLogger } from '@bazaar/logging';
import {
  describeMachine,
  infraUrls,
  loadOrCreateSecrets,
  portOf,
  readStackConfig,
  repoRoot,
  writeBenchmarkSection,
} from '@bazaar/stack';
import {
  createEventBus,
  enqueueEvents,
  groupQueues,
  outboxSchemaSql,
  startPgOutboxRelay,
  type BusEvent,
} from '../src/index';

// Outbox (PostgreSQL) → relay → RabbitMQ → bus consumer, against raw amqplib publish → consume on the
// same broker in the same run. The bench (or test) profile's servers, 127.0.0.1 only, bounded in count and time.
const EVENTS = 50_000;
const GOAL_RATE = 10_000;
const GOAL_RATIO = 0.35;
const TIME_LIMIT_MS = 120_000;
const DATABASE = 'event_bus_bench';
const RELAY_BATCH = 500;
const RELAY_WORKERS = 4;
const ROUNDS = 3;
const stackConfig = readStackConfig(); // BAZAAR_PROFILE=bench, set by `npm run bench`
const secrets = await loadOrCreateSecrets(stackConfig.stateDir);
const urlsOf = (database?: string) =>
  infraUrls({ secrets, port: (name) => portOf(stackConfig, name) }, database);
const stack = {
  rabbitmq: urlsOf().rabbitmq,
  postgres: urlsOf().postgres,
  postgresDatabase: (name: string) => urlsOf(name).postgres,
};
const logger = createLogger({ service: 'event-bus-bench', level: 'error' });
const say = (line: string) => console.log(`  event-bus: ${line}`);

function orderPlaced(n: number): EventTypes['order.placed.v1'] {
  const orderId = `ord_${String(n).padStart(26, '0')}`;
  return createEvent('order.placed.v1', {
    source: '/orders',
    subject: orderId,
    data: {
      orderId,
      userId: 'usr_01J9Z3K4M5N6P7Q8R9S0T1V2W3',
      items: [
        {
          productId: 'prd_01J9YTEA0KETTLE00000000000',
          name: 'Stainless steel kettle',
          quantity: 1,
          unitPrice: { amount: 3999, currency: 'USD' },
        },
        {
          productId: 'prd_01J9YTEA0MUG0000000000000',
          name: 'Stoneware mug',
          quantity: 2,
          unitPrice: { amount: 1250, currency: 'USD' },
        },
      ],
      total: { amount: 6499, currency: 'USD' },
      paymentToken: 'tok_visa',
      placedAt: '2025-01-31T10:00:00.000Z',
      deadline: '2025-01-31T10:00:30.000Z',
    },
  });
}

function withinLimit<T>(work: Promise<T>, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} exceeded ${TIME_LIMIT_MS} ms`)),
      TIME_LIMIT_MS,
    );
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/**
 * The baseline: one confirm channel publishing every message with pipelined confirms (back-pressure
 * respected), one consumer with the same prefetch acknowledging each message — the broker's and
 * amqplib's own cost, nothing of ours. Returns events per second, first publish to last delivery.
 */
async function rawRate(bodies: readonly Buffer[]): Promise<number> {
  const exchange = `bench.raw.${randomUUID().slice(0, 8)}`;
  const queue = `${exchange}.queue`;
  const publishing = await connect(stack.rabbitmq);
  const consuming = await connect(stack.rabbitmq);
  try {
    const channel = await publishing.createConfirmChannel();
    await channel.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    const consumer = await consuming.createChannel();
    await consumer.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await consumer.bindQueue(queue, exchange, 'order.placed.v1');
    await consumer.prefetch(500);
    let received = 0;
    const done = new Promise<number>((resolve) => {
      void consumer.consume(queue, (message: ConsumeMessage | null) => {
        if (message === null) return;
        consumer.ack(message);
        received += 1;
        if (received === bodies.length) resolve(performance.now());
      });
    });
    const startedAt = performance.now();
    const confirms: Promise<void>[] = [];
    for (const body of bodies) {
      let hasRoom = true;
      confirms.push(
        new Promise<void>((resolve, reject) => {
          hasRoom = channel.publish(
            exchange,
            'order.placed.v1',
            body,
            { persistent: true, contentType: 'application/cloudevents+json' },
            (error: unknown) => (error === null ? resolve() : reject(new Error('nacked'))),
          );
        }),
      );
      if (!hasRoom) await new Promise((drained) => channel.once('drain', drained));
    }
    await withinLimit(Promise.all(confirms), 'raw publish');
    const endedAt = await withinLimit(done, 'raw consume');
    await consumer.deleteQueue(queue);
    await channel.deleteExchange(exchange);
    return bodies.length / ((endedAt - startedAt) / 1000);
  } finally {
    await publishing.close();
    await consuming.close();
  }
}

/**
 * The product path: events already committed to the outbox; the clock runs from starting the relay
 * until the bus consumer (schema validation, trace span, metrics, manual ack) has handled every event.
 */
async function outboxRate(pool: pg.Pool, events: readonly BusEvent[]): Promise<number> {
  const exchange = `bench.events.${randomUUID().slice(0, 8)}`;
  const group = `bench.outbox-${randomUUID().slice(0, 8)}`;
  await pool.query('DROP TABLE IF EXISTS outbox');
  await pool.query(outboxSchemaSql());
  for (let start = 0; start < events.length; start += 5000) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await enqueueEvents(client, events.slice(start, start + 5000));
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  }
  const bus = createEventBus({ url: stack.rabbitmq, logger, exchange, name: 'event-bus-bench' });
  try {
    let received = 0;
    let resolveDone: (at: number) => void = () => undefined;
    const done = new Promise<number>((resolve) => {
      resolveDone = resolve;
    });
    const consumer = await bus.consume({
      group,
      prefetch: 500,
      handlers: {
        'order.placed.v1': () => {
          received += 1;
          if (received === events.length) resolveDone(performance.now());
          return Promise.resolve();
        },
      },
    });
    const startedAt = performance.now();
    const relay = startPgOutboxRelay({
      pool,
      bus,
      logger,
      batchSize: RELAY_BATCH,
      concurrency: RELAY_WORKERS,
    });
    const endedAt = await withinLimit(done, 'outbox → consumer');
    await relay.stop();
    await consumer.close();
    const admin = await connect(stack.rabbitmq);
    const channel = await admin.createChannel();
    const queues = groupQueues(group, [1000, 5000, 30_000]);
    for (const queue of [queues.work, queues.deadLetter, ...queues.retries.map((r) => r.name)]) {
      await channel.deleteQueue(queue);
    }
    await channel.deleteExchange(exchange);
    await admin.close();
    return events.length / ((endedAt - startedAt) / 1000);
  } finally {
    await bus.close();
  }
}

async function withDatabase<T>(work: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: stack.postgres });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DATABASE}`);
  const pool = new pg.Pool({ connectionString: stack.postgresDatabase(DATABASE), max: 8 });
  // Idle clients see the forced DROP DATABASE at the end; nothing to do about it then.
  pool.on('error', () => undefined);
  try {
    return await work(pool);
  } finally {
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin.end();
  }
}

const events = Array.from({ length: EVENTS }, (_, n) => orderPlaced(n));
const bodies = events.map((event) => Buffer.from(JSON.stringify(event)));
say(`${EVENTS} order.placed.v1 events of ${bodies[0]?.length ?? 0} bytes`);

const median = (values: readonly number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

// Alternating rounds, so a burst of load from elsewhere on the machine hits both paths alike.
const loadBefore = os.loadavg()[0] ?? 0;
const result = await withDatabase(async (pool) => {
  // Warm-up (JIT, broker queue processes, connection pools), not recorded.
  await rawRate(bodies.slice(0, 5000));
  await outboxRate(pool, events.slice(0, 5000));
  const raws: number[] = [];
  const outboxes: number[] = [];
  for (let round = 1; round <= ROUNDS; round += 1) {
    raws.push(await rawRate(bodies));
    outboxes.push(await outboxRate(pool, events));
    say(
      `round ${round}/${ROUNDS}: raw ${raws.at(-1)?.toFixed(0)} events/s, outbox ${outboxes.at(-1)?.toFixed(0)} events/s`,
    );
  }
  return { raw: median(raws), outbox: median(outboxes), raws, outboxes };
});

const ratio = result.outbox / result.raw;
const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
const section = `## Event bus: outbox → consumer throughput

Measured ${new Date().toISOString().slice(0, 10)} on ${describeMachine()}. Profile \`${stackConfig.profile}\` (RabbitMQ 3.10, one node;
PostgreSQL 15 with \`fsync=${stackConfig.profile === 'test' ? 'off' : 'on'}\`), everything on 127.0.0.1. After a 5,000-event warm-up, ${ROUNDS} alternating rounds
(raw, outbox, raw, …); the table shows the medians (all rounds: raw ${result.raws.map((r) => r.toFixed(0)).join(', ')};
outbox ${result.outboxes.map((r) => r.toFixed(0)).join(', ')} events/s). Load average when the run began: ${loadBefore.toFixed(1)}.
${EVENTS.toLocaleString('en-US')} \`order.placed.v1\` events of ${bodies[0]?.length ?? 0} bytes, quorum queues, persistent messages, publisher confirms.

| path | events/s |
|---|---|
| raw amqplib: one confirm channel publishing with pipelined confirms → one consumer (prefetch 500) acking each message | ${result.raw.toFixed(0)} |
| outbox: rows already committed in PostgreSQL → \`startPgOutboxRelay\` (${RELAY_WORKERS} workers, each: claim-and-mark ${RELAY_BATCH} rows in one \`UPDATE … FOR UPDATE SKIP LOCKED\`, send the stored JSON (validated at enqueue), await the batch's confirms, commit) → \`bus.consume\` (prefetch 500; contract validation, span, metrics, acks coalesced into multiple-acks) | ${result.outbox.toFixed(0)} |

| goal | result | |
|---|---|---|
| outbox → consumer ≥ ${GOAL_RATE.toLocaleString('en-US')} events/s | ${result.outbox.toFixed(0)} events/s | ${verdict(result.outbox >= GOAL_RATE)} |
| ≥ ${GOAL_RATIO} × raw publish → consume | ${ratio.toFixed(2)} × | ${verdict(ratio >= GOAL_RATIO)} |

Both paths share the 2 cores with the broker and the database, so the ratio is the meaningful number.
Run: \`npm run bench -- event-bus\` ([packages/event-bus/bench/outbox.bench.ts](../packages/event-bus/bench/outbox.bench.ts)).`;
writeBenchmarkSection('event-bus', section);
// docs/ is under `npm run check`'s format check: leave the file the way Prettier writes it.
const benchmarksFile = path.join(repoRoot, 'docs', 'benchmarks.md');
writeFileSync(
  benchmarksFile,
  await format(readFileSync(benchmarksFile, 'utf8'), {
    ...(await resolveConfig(benchmarksFile)),
    filepath: benchmarksFile,
  }),
);
say(`ratio ${ratio.toFixed(2)}; written to docs/benchmarks.md`);
