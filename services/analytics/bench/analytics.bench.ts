// `npm run bench -- analytics`:
// 1. Sustained ingestion: N events waiting in a consumer group's queue on the bench stack's RabbitMQ,
//    drained by the analytics bundle (its own process and DuckDB file) into the warehouse — against
//    the same N events drained by an @bazaar/event-bus consumer whose handler does nothing (the bus
//    ceiling on this machine), in the same run.
// 2. Summary latency over 10M raw events: a DuckDB file generated directly with SQL (range()), the
//    summary query of the DuckDB adapter over all of it and over one day — against a bare
//    `count(*)` of the raw events table (the scan floor), in the same run.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import {
  DEFAULT_RETRY_POLICY,
  createEventBus,
  groupQueues,
  type EventBus,
} from '@bazaar/event-bus';
import { eventTypeNames, type BazaarEvent } from '@bazaar/contracts';
import { createLogger } from '@bazaar/logging';
import {
  describeMachine,
  freePort,
  readStackConfig,
  repoRoot,
  writeBenchmarkSection,
} from '@bazaar/stack';
import { testStack } from '@bazaar/testing';
import amqp from 'amqplib';
import { openDuckDbWarehouse, schemaSql } from '../src/duckdb-warehouse';
import { sendToGroupQueue } from '../test/analytics.fixture';
import { generateEvents } from '../test/events.fixture';

const INGEST_EVENTS = 100_000;
const SUMMARY_ROWS = 10_000_000;
const QUERY_RUNS = 15;
const GOAL_EVENTS_PER_SECOND = 10_000;
const GOAL_SUMMARY_MS = 500;

const stack = readStackConfig(); // BAZAAR_PROFILE=bench, set by `npm run bench`
const infra = testStack();
const logger = createLogger({ service: 'analytics-bench', level: 'warn' });
const bundle = path.join(repoRoot, 'services', 'analytics', 'dist', 'main.mjs');

async function withChannel<T>(work: (channel: amqp.Channel) => Promise<T>): Promise<T> {
  const connection = await amqp.connect(infra.rabbitmq);
  try {
    return await work(await connection.createChannel());
  } finally {
    await connection.close();
  }
}

const queuesOf = (group: string) => groupQueues(group, DEFAULT_RETRY_POLICY.delaysMs);

async function readyCount(group: string): Promise<number> {
  return withChannel(async (channel) => (await channel.checkQueue(group)).messageCount);
}

async function deleteGroup(group: string): Promise<void> {
  const queues = queuesOf(group);
  await withChannel(async (channel) => {
    for (const name of [queues.work, queues.deadLetter, ...queues.retries.map((q) => q.name)]) {
      await channel.deleteQueue(name);
    }
  });
}

/** Declares the group's queues (a consumer that starts and leaves), then fills the work queue. */
async function fillQueue(bus: EventBus, group: string, events: readonly BazaarEvent[]) {
  const noop = () => Promise.resolve();
  const consumer = await bus.consume({
    group,
    handlers: Object.fromEntries(eventTypeNames.map((type) => [type, noop])),
  });
  await consumer.close();
  // Straight into this group's queue: through bazaar.events the bench stack's payments and
  // notifications would consume them too.
  await sendToGroupQueue(group, events, infra.rabbitmq);
  while ((await readyCount(group)) < events.length) await sleep(200);
}

interface Drain {
  readonly label: string;
  readonly events: number;
  readonly seconds: number;
}

async function drainWithNoopConsumer(bus: EventBus, group: string, total: number): Promise<Drain> {
  let handled = 0;
  const handler = () => {
    handled += 1;
    return Promise.resolve();
  };
  const began = performance.now();
  const consumer = await bus.consume({
    group,
    prefetch: 4_000,
    handlers: Object.fromEntries(eventTypeNames.map((type) => [type, handler])),
  });
  while (handled < total) await sleep(20);
  const seconds = (performance.now() - began) / 1000;
  await consumer.close();
  return { label: 'event-bus consumer, no-op handler (baseline)', events: total, seconds };
}

function insertedOf(metrics: string): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (line.startsWith('analytics_warehouse_events_total') && line.includes('"inserted"')) {
      total += Number(line.split(' ').at(-1));
    }
  }
  return total;
}

async function drainWithAnalytics(group: string, total: number, dir: string): Promise<Drain> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [bundle], {
    cwd: path.dirname(bundle),
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      PATH: stack.childEnv.PATH ?? '',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      RABBITMQ_URL: infra.rabbitmq,
      JWKS_URL: `${infra.url('users')}/.well-known/jwks.json`,
      WAREHOUSE_PATH: path.join(dir, 'ingest.duckdb'),
      CONSUMER_GROUP: group,
    },
  });
  // Sustained ingestion: the clock starts once the process answers, and the events it inserted before
  // then (its consumer starts before its port opens) are not counted, so Node's start, the DuckDB
  // open and the broker connection are not ingestion time.
  const spawned = performance.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`analytics exited with ${String(child.exitCode)}`);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) break;
    await sleep(10);
  }
  const began = performance.now();
  const insertedBefore = insertedOf(
    await fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.text()),
  );
  try {
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`analytics exited with ${String(child.exitCode)}`);
      const metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then(
        (response) => (response.ok ? response.text() : ''),
        () => '',
      );
      if (insertedOf(metrics) >= total) break;
      await sleep(20);
    }
    const seconds = (performance.now() - began) / 1000;
    const startSeconds = (began - spawned) / 1000;
    return {
      label: `analytics → DuckDB (bundle, batches of 2,000, durable commit before ack; timed from ready, start took ${startSeconds.toFixed(1)} s)`,
      events: total - insertedBefore,
      seconds,
    };
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

/** ~10M raw events (orders, payments, registrations) and their facts, generated by DuckDB itself. */
async function generateWarehouse(file: string): Promise<{ raw: number; seconds: number }> {
  const began = performance.now();
  const orders = Math.round(SUMMARY_ROWS / 4);
  const instance = await DuckDBInstance.create(file, { memory_limit: '2GB' });
  const connection = await instance.connect();
  // 90 days of orders; i % 100 decides the saga: < 65 confirmed + captured (< 6 also refunded),
  // < 85 payment failed + cancelled, else timed out.
  await connection.run(schemaSql);
  await connection.run(`
    CREATE TEMP TABLE o AS SELECT i,
      TIMESTAMP '2026-01-01' + to_milliseconds((i * (7776000000 // ${orders}))::BIGINT) AS t,
      (1000 + (i * 7919) % 90000)::BIGINT AS amount,
      CASE WHEN i % 5 = 0 THEN 'EUR' ELSE 'USD' END AS currency
    FROM range(${orders}) r(i);
    INSERT INTO order_facts SELECT 'e-p-' || i, 'ord_' || i, 'usr_' || (i % 100000), 'placed',
      amount, currency, NULL, t FROM o;
    INSERT INTO order_facts SELECT 'e-c-' || i, 'ord_' || i, 'usr_' || (i % 100000), 'confirmed',
      amount, currency, NULL, t + INTERVAL 1 SECOND FROM o WHERE i % 100 < 65;
    INSERT INTO order_facts SELECT 'e-x-' || i, 'ord_' || i, 'usr_' || (i % 100000), 'cancelled',
      amount, currency, CASE WHEN i % 100 < 85 THEN 'PAYMENT_DECLINED' ELSE 'PAYMENT_TIMEOUT' END,
      t + INTERVAL 30 SECOND FROM o WHERE i % 100 >= 65;
    INSERT INTO order_item_facts SELECT 'e-p-' || i, 'ord_' || i, 'prd_' || (i % 500), 'Product',
      1 + i % 3, amount, currency, t FROM o;
    INSERT INTO payment_facts SELECT 'e-a-' || i, 'pay_' || i, 'ord_' || i, 'usr_' || (i % 100000),
      'authorized', amount, currency, NULL, t + INTERVAL 800 MILLISECOND FROM o WHERE i % 100 < 65;
    INSERT INTO payment_facts SELECT 'e-k-' || i, 'pay_' || i, 'ord_' || i, 'usr_' || (i % 100000),
      'captured', amount, currency, NULL, t + INTERVAL 2 SECOND FROM o WHERE i % 100 < 65;
    INSERT INTO payment_facts SELECT 'e-f-' || i, 'pay_' || i, 'ord_' || i, 'usr_' || (i % 100000),
      'failed', amount, currency, 'CARD_DECLINED', t + INTERVAL 700 MILLISECOND
      FROM o WHERE i % 100 BETWEEN 65 AND 84;
    INSERT INTO payment_facts SELECT 'e-r-' || i, 'pay_' || i, 'ord_' || i, 'usr_' || (i % 100000),
      'refunded', amount // 2, currency, NULL, t + INTERVAL 1 HOUR FROM o WHERE i % 100 < 6;
  `);
  const factEvents = `
    SELECT event_id, occurred_at, 'order.' || kind || '.v1' AS type FROM order_facts
    UNION ALL SELECT event_id, occurred_at, 'payment.' || kind || '.v1' FROM payment_facts`;
  const [counted] = (
    await connection.runAndReadAll(`SELECT count(*) AS n FROM (${factEvents})`)
  ).getRowsJS();
  const users = Math.max(0, SUMMARY_ROWS - Number(counted?.[0] ?? 0));
  // id_hash here is DuckDB's hash(), not the service's MD5 key: this file is only queried.
  await connection.run(`
    INSERT INTO user_facts SELECT 'e-u-' || i, 'usr_' || i,
      TIMESTAMP '2026-01-01' + to_milliseconds((i * (7776000000 // ${Math.max(users, 1)}))::BIGINT)
    FROM range(${users}) r(i);
    INSERT INTO raw_events
    SELECT event_id, hash(event_id), type, '/bench', event_id, occurred_at, occurred_at,
           '{"bench":true}'
    FROM (${factEvents} UNION ALL SELECT event_id, occurred_at, 'user.registered.v1' FROM user_facts)
    ORDER BY occurred_at;
    CHECKPOINT;
  `);
  const [raw] = (await connection.runAndReadAll('SELECT count(*) FROM raw_events')).getRowsJS();
  connection.closeSync();
  instance.closeSync();
  return { raw: Number(raw?.[0] ?? 0), seconds: (performance.now() - began) / 1000 };
}

interface Latency {
  readonly label: string;
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
}

async function measure(label: string, run: () => Promise<unknown>): Promise<Latency> {
  await run(); // warm: first touch of the columns
  const times: number[] = [];
  for (let i = 0; i < QUERY_RUNS; i += 1) {
    const began = performance.now();
    await run();
    times.push(performance.now() - began);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? NaN;
  return { label, p50: at(0.5), p95: at(0.95), max: times.at(-1) ?? NaN };
}

const dir = await mkdtemp(path.join(tmpdir(), 'analytics-bench-'));
const bus = createEventBus({ url: infra.rabbitmq, logger, name: 'analytics-bench' });
const suffix = randomBytes(3).toString('hex');
const baselineGroup = `analytics.bench-noop-${suffix}`;
const analyticsGroup = `analytics.bench-${suffix}`;
try {
  console.log(`generating ${INGEST_EVENTS} events`);
  const events = generateEvents(INGEST_EVENTS, 42).slice(0, INGEST_EVENTS);
  console.log('ingestion: baseline');
  await fillQueue(bus, baselineGroup, events);
  const baseline = await drainWithNoopConsumer(bus, baselineGroup, events.length);
  console.log('ingestion: analytics');
  await fillQueue(bus, analyticsGroup, events);
  const ingest = await drainWithAnalytics(analyticsGroup, events.length, dir);
  await bus.close();

  console.log(`generating ${SUMMARY_ROWS} raw events into DuckDB`);
  const file = path.join(dir, 'summary.duckdb');
  const generated = await generateWarehouse(file);
  const floor = await measureCount(file);
  const warehouse = await openDuckDbWarehouse({ path: file, logger, memoryLimit: '2GB' });
  await warehouse.open();
  const all = { from: new Date('2000-01-01T00:00:00Z'), to: new Date('2100-01-01T00:00:00Z') };
  const day = { from: new Date('2026-02-01T00:00:00Z'), to: new Date('2026-02-02T00:00:00Z') };
  const latencies = [
    await measure('summary, all 10M events (3 queries)', () => warehouse.summary(all)),
    await measure('summary, one day', () => warehouse.summary(day)),
    await measure('orders per day, 90 days', () =>
      warehouse.ordersOverTime(
        { from: new Date('2026-01-01T00:00:00Z'), to: new Date('2026-04-01T00:00:00Z') },
        'day',
      ),
    ),
    await measure('top products, all', () => warehouse.topProducts(all, 10)),
    floor,
  ];
  const summary = (await warehouse.summary(all)).events;
  await warehouse.close();

  const rate = (drain: Drain) => Math.round(drain.events / drain.seconds);
  const fmt = (n: number) => n.toLocaleString('en-US');
  const ms = (n: number) => n.toFixed(1);
  const summaryAll = latencies[0] as Latency;
  const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
  writeBenchmarkSection(
    'analytics',
    `## analytics: ingestion into DuckDB and summary latency

Measured ${new Date().toISOString().slice(0, 10)} on ${describeMachine()}, against the \`${stack.profile}\`
stack's RabbitMQ 3.10 (quorum queues); every process shares the machine's cores.

**Sustained ingestion.** ${fmt(INGEST_EVENTS)} contract-valid events (checkout sagas of every
outcome) wait in a consumer group's quorum queue; the time to drain them is measured. Analytics runs
as the bundle \`npm start\` runs (\`NODE_ENV=production\`, defaults: batches of 2,000 or 200 ms,
prefetch 4,000, DuckDB commit before the acknowledgement, dedupe check against the warehouse). The
baseline drains the same events with an \`@bazaar/event-bus\` consumer (same validation, prefetch
4,000) whose handler does nothing.

| consumer | events | seconds | events/s |
|---|---|---|---|
| ${ingest.label} | ${fmt(ingest.events)} | ${ingest.seconds.toFixed(1)} | ${fmt(rate(ingest))} |
| ${baseline.label} | ${fmt(baseline.events)} | ${baseline.seconds.toFixed(1)} | ${fmt(rate(baseline))} |

Goal ≥ ${fmt(GOAL_EVENTS_PER_SECOND)} events/s: ${verdict(rate(ingest) >= GOAL_EVENTS_PER_SECOND)}
(${(rate(ingest) / rate(baseline)).toFixed(2)}× the no-op consumer). The analytics figure is timed
from the moment its process answers and counts only the events inserted after that.

**Summary latency over ${fmt(generated.raw)} raw events.** Generated directly in DuckDB with SQL in
${generated.seconds.toFixed(0)} s: 2.5M orders over 90 days (65 % confirmed and captured, 6 %
partly refunded, 20 % declined, 15 % timed out), their payments and lines, topped up with
registrations to ${fmt(SUMMARY_ROWS)} raw events (\`summary.events\` = ${fmt(summary)}). Each query
through the DuckDB adapter, ${QUERY_RUNS} runs after one warm-up, memory limit 2 GB.

| query | p50 ms | p95 ms | max ms |
|---|---|---|---|
${latencies.map((l) => `| ${l.label} | ${ms(l.p50)} | ${ms(l.p95)} | ${ms(l.max)} |`).join('\n')}

Goal summary ≤ ${GOAL_SUMMARY_MS} ms: ${verdict(summaryAll.p95 <= GOAL_SUMMARY_MS)} (p95 ${ms(summaryAll.p95)} ms).

Source: [services/analytics/bench/analytics.bench.ts](../services/analytics/bench/analytics.bench.ts).`,
  );
  console.log(
    `ingest ${rate(ingest)} events/s (baseline ${rate(baseline)}); summary p95 ${ms(summaryAll.p95)} ms`,
  );
} finally {
  await bus.close().catch(() => undefined);
  await deleteGroup(baselineGroup).catch(() => undefined);
  await deleteGroup(analyticsGroup).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}

async function measureCount(file: string): Promise<Latency> {
  // Before the adapter opens the file: one DuckDB instance per file at a time.
  const instance = await DuckDBInstance.create(file, { memory_limit: '2GB' });
  const connection = await instance.connect();
  try {
    return await measure('baseline: SELECT count(*) FROM raw_events', () =>
      connection.runAndReadAll('SELECT count(*) FROM raw_events'),
    );
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
