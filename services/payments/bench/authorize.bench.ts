import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'amqplib';
import pg from 'pg';
import { format, resolveConfig } from 'prettier';
import { createEvent, validateEvent, type EventTypes } from '@bazaar/contracts';
import { createEventBus, groupQueues, startPgOutboxRelay } from '@bazaar/event-bus';
import { createLogger } from '@bazaar/logging';
import {
  describeMachine,
  freePort,
  infraUrls,
  loadOrCreateSecrets,
  portOf,
  readStackConfig,
  repoRoot,
  writeBenchmarkSection,
} from '@bazaar/stack';
import { startTelemetry } from '@bazaar/telemetry';
import { buildApp } from '../src/app';
import { readConfig } from '../src/config';
import { createPool, migrate } from '../src/database';
import { startOrderConfirmedConsumer } from '../src/order-confirmed.consumer';
import { startOrderPlacedConsumer } from '../src/order-placed.consumer';
import { paymentIdOf, processorKeyOf } from '../src/payment';
import { createPspSandboxProcessor } from '../src/psp-sandbox.processor';

// Authorizations/s through the order.placed.v1 consumer — delivery, processor call over HTTP with
// its Idempotency-Key, one PostgreSQL transaction (dedupe + payment + ledger + outbox), ack — with
// the outbox relay publishing payment.authorized.v1 alongside. Baselines in the same run: the
// processor alone (the same adapter at the same concurrency, no bus or database) and the bus alone
// (the same events to a consumer that only acks). The bench profile's PostgreSQL and RabbitMQ, a
// private psp-sandbox process; 127.0.0.1 only, bounded in count and time.
const ORDERS = 3000;
const PREFETCH = 64;
const ROUNDS = 2;
const TIME_LIMIT_MS = 120_000;
const DATABASE = 'payments_bench';
const stackConfig = readStackConfig(); // BAZAAR_PROFILE=bench, set by `npm run bench`
const secrets = await loadOrCreateSecrets(stackConfig.stateDir);
const urlsOf = (database?: string) =>
  infraUrls({ secrets, port: (name) => portOf(stackConfig, name) }, database);
const logger = createLogger({ service: 'payments-bench', level: 'error' });
const say = (line: string) => console.log(`  payments: ${line}`);
const timeLimit = Date.now() + TIME_LIMIT_MS * 4;

function orderPlaced(round: string, n: number): EventTypes['order.placed.v1'] {
  const orderId = `ord_${round}${String(n).padStart(8, '0')}`;
  const placedAt = new Date();
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
      ],
      total: { amount: 3999, currency: 'USD' },
      paymentToken: 'tok_visa',
      placedAt: placedAt.toISOString(),
      deadline: new Date(placedAt.getTime() + 600_000).toISOString(),
    },
  });
}

async function startPsp(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [path.join(repoRoot, 'services/psp-sandbox/dist/main.mjs')],
    {
      env: {
        PATH: '/usr/bin:/bin',
        NODE_ENV: 'test',
        PORT: String(port),
        LOG_LEVEL: 'error',
        PSP_SANDBOX_MAX_AUTHORIZATIONS: '1000000',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let tries = 0; ; tries += 1) {
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) break;
    } catch {
      if (tries > 100) throw new Error('psp-sandbox did not start');
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function countOf(sql: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(sql);
  return Number(rows[0]?.n ?? 0);
}

async function waitUntil(check: () => Promise<boolean>, what: string): Promise<void> {
  while (!(await check())) {
    if (Date.now() > timeLimit) throw new Error(`${what}: time limit passed`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const admin = new pg.Client({ connectionString: urlsOf().postgres });
await admin.connect();
await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
await admin.query(`CREATE DATABASE ${DATABASE}`);
const psp = await startPsp();
const config = readConfig({
  NODE_ENV: 'test',
  LOG_LEVEL: 'error',
  DATABASE_URL: urlsOf(DATABASE).postgres,
  RABBITMQ_URL: urlsOf().rabbitmq,
  PSP_URL: psp.url,
  JWKS_URL: 'http://127.0.0.1:9/unused',
  PAYMENTS_PREFETCH: String(PREFETCH),
  // The whole bench stack shares the cores with this run: a generous deadline keeps a stall from
  // being counted as a processor outage.
  PSP_TIMEOUT_MS: '30s',
});
const telemetry = startTelemetry({ serviceName: 'payments' });
const pool = createPool({
  connectionString: config.DATABASE_URL,
  logger,
  max: config.DATABASE_POOL_SIZE,
  statementTimeoutMs: config.REQUEST_TIMEOUT_MS,
});
pool.on('error', () => undefined);
const processor = createPspSandboxProcessor({
  baseUrl: config.PSP_URL,
  timeoutMs: config.PSP_TIMEOUT_MS,
  maxAttempts: config.PSP_MAX_ATTEMPTS,
  breakerFailures: config.PSP_BREAKER_FAILURES,
  breakerHalfOpenAfterMs: config.PSP_BREAKER_HALF_OPEN_MS,
  connections: config.PSP_CONNECTIONS,
});
await migrate(pool, logger);
const payments = buildApp({ config, logger, telemetry, pool, processor });
const exchange = `payments-bench-${randomBytes(4).toString('hex')}`;
const bus = createEventBus({
  url: config.RABBITMQ_URL,
  logger,
  validate: validateEvent,
  name: 'payments-bench',
  exchange,
});
const relay = startPgOutboxRelay({ pool, bus, logger });

function orderConfirmed(placed: EventTypes['order.placed.v1']): EventTypes['order.confirmed.v1'] {
  const { orderId, userId, total } = placed.data;
  return createEvent('order.confirmed.v1', {
    source: '/orders',
    subject: orderId,
    data: {
      orderId,
      userId,
      paymentId: paymentIdOf(orderId),
      total,
      confirmedAt: new Date().toISOString(),
    },
  });
}

/** PostgreSQL's write transactions so far (the next xid) and WAL position: read without writing. */
async function writeCounters(): Promise<{ xid: bigint; walBytes: bigint }> {
  const { rows } = await pool.query<{ xid: string; wal: string }>(
    `SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xid,
            pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS wal`,
  );
  return { xid: BigInt(rows[0]?.xid ?? 0), walBytes: BigInt(rows[0]?.wal ?? 0) };
}

interface RoundCost {
  /** Write transactions (all of PostgreSQL: consumer, relay, anything else) per message. */
  readonly transactions: number;
  readonly walBytes: number;
}

async function costSince(
  before: { xid: bigint; walBytes: bigint },
  messages: number,
): Promise<RoundCost> {
  const after = await writeCounters();
  return {
    transactions: Number(after.xid - before.xid) / messages,
    walBytes: Number(after.walBytes - before.walBytes) / messages,
  };
}

/** Publishes the events to a group's queue while no consumer runs (the queue is declared first). */
async function preload(group: string, events: readonly EventTypes[keyof EventTypes][]) {
  const declaring = await bus.consume<EventTypes>({
    group,
    handlers: {
      [events[0]?.type ?? 'order.placed.v1']: () => Promise.reject(new Error('not yet')),
    },
    prefetch: 1,
  });
  await declaring.close();
  for (let start = 0; start < events.length; start += 500) {
    const settled = await bus.publishBatch(
      events.slice(start, start + 500).map((event) => ({ event })),
    );
    if (settled.some((result) => result.status === 'rejected')) throw new Error('publish failed');
  }
}

async function deleteGroup(group: string, delays: readonly number[]) {
  const connection = await connect(config.RABBITMQ_URL);
  const channel = await connection.createChannel();
  const queues = groupQueues(group, delays);
  for (const queue of [queues.work, queues.deadLetter, ...queues.retries.map((r) => r.name)]) {
    await channel.deleteQueue(queue);
  }
  await connection.close();
}

/**
 * Full path: authorizations/s through the consumer, until every payment is committed; then the
 * captures of the same orders through the order.confirmed consumer.
 */
async function consumerRate(round: string): Promise<{
  authorize: number;
  capture: number;
  authorizeCost: RoundCost;
  captureCost: RoundCost;
}> {
  const events = Array.from({ length: ORDERS }, (_, n) => orderPlaced(round, n));
  const group = `payments-bench-${round}.order-placed`;
  await preload(group, events);
  const before = await countOf('SELECT count(*) AS n FROM payments');
  const counters = await writeCounters();
  const startedAt = performance.now();
  const consumer = await startOrderPlacedConsumer(bus, payments.service, {
    prefetch: PREFETCH,
    maxAttempts: config.PAYMENTS_AUTHORIZE_MAX_ATTEMPTS,
    group,
  });
  await waitUntil(
    async () => (await countOf('SELECT count(*) AS n FROM payments')) - before >= ORDERS,
    'payments committed',
  );
  const seconds = (performance.now() - startedAt) / 1000;
  const authorizeCost = await costSince(counters, ORDERS);
  await consumer.close();
  await deleteGroup(group, [1000, 2000, 4000]);

  const confirmations = events.map(orderConfirmed);
  const captureGroup = `payments-bench-${round}.order-confirmed`;
  await preload(captureGroup, confirmations);
  const capturedBefore = await countOf(
    `SELECT count(*) AS n FROM payments WHERE status = 'CAPTURED'`,
  );
  const captureCounters = await writeCounters();
  const captureStartedAt = performance.now();
  const captureConsumer = await startOrderConfirmedConsumer(bus, payments.service, {
    prefetch: PREFETCH,
    group: captureGroup,
  });
  await waitUntil(
    async () =>
      (await countOf(`SELECT count(*) AS n FROM payments WHERE status = 'CAPTURED'`)) -
        capturedBefore >=
      ORDERS,
    'captures committed',
  );
  const captureSeconds = (performance.now() - captureStartedAt) / 1000;
  const captureCost = await costSince(captureCounters, ORDERS);
  await captureConsumer.close();
  await deleteGroup(captureGroup, [1000, 5000, 30_000]);
  return {
    authorize: ORDERS / seconds,
    capture: ORDERS / captureSeconds,
    authorizeCost,
    captureCost,
  };
}

/** Baseline: the processor alone, same adapter, same concurrency. */
async function processorRate(round: string): Promise<number> {
  let next = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: PREFETCH }, async () => {
      while (next < ORDERS) {
        const n = next;
        next += 1;
        const paymentId = paymentIdOf(`ord_base${round}${n}`);
        const result = await processor.authorize({
          token: 'tok_visa',
          amount: { amount: 3999, currency: 'USD' },
          reference: paymentId,
          idempotencyKey: processorKeyOf(paymentId, 'authorize'),
        });
        if (result.kind !== 'approved') throw new Error('declined');
      }
    }),
  );
  return ORDERS / ((performance.now() - startedAt) / 1000);
}

/** Baseline: the bus alone, the same events to a consumer that only acks. */
async function busRate(round: string): Promise<number> {
  const events = Array.from({ length: ORDERS }, (_, n) => orderPlaced(`bus${round}`, n));
  const group = `payments-bench-bus${round}.order-placed`;
  await preload(group, events);
  let handled = 0;
  const startedAt = performance.now();
  const consumer = await bus.consume<EventTypes>({
    group,
    prefetch: PREFETCH,
    handlers: {
      'order.placed.v1': () => {
        handled += 1;
        return Promise.resolve();
      },
    },
  });
  await waitUntil(() => Promise.resolve(handled >= ORDERS), 'bus consumed');
  const seconds = (performance.now() - startedAt) / 1000;
  await consumer.close();
  await deleteGroup(group, [1000, 5000, 30_000]);
  return ORDERS / seconds;
}

/** The middle value; the mean of the two middle ones for an even count (not the higher one). */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}
const loadBefore = os.loadavg()[0] ?? 0;
const full: number[] = [];
const captures: number[] = [];
const roundLoads: number[] = [];
const costs: { authorize: RoundCost; capture: RoundCost }[] = [];
const processorOnly: number[] = [];
const busOnly: number[] = [];
try {
  // Warm-up (JIT, pools, keep-alive sockets, queue processes), not recorded.
  await processorRate('w');
  for (let round = 1; round <= ROUNDS; round += 1) {
    roundLoads.push(os.loadavg()[0] ?? 0);
    busOnly.push(await busRate(String(round)));
    processorOnly.push(await processorRate(String(round)));
    const measured = await consumerRate(`r${round}`);
    full.push(measured.authorize);
    captures.push(measured.capture);
    costs.push({ authorize: measured.authorizeCost, capture: measured.captureCost });
    say(
      `round ${round}/${ROUNDS}: consumer ${full.at(-1)?.toFixed(0)} (${measured.authorizeCost.transactions.toFixed(2)} write transactions, ${(measured.authorizeCost.walBytes / 1024).toFixed(1)} KiB WAL each), captures ${captures.at(-1)?.toFixed(0)} (${measured.captureCost.transactions.toFixed(2)}, ${(measured.captureCost.walBytes / 1024).toFixed(1)} KiB), processor alone ${processorOnly.at(-1)?.toFixed(0)}, bus alone ${busOnly.at(-1)?.toFixed(0)} /s`,
    );
  }
  const outboxLeft = await countOf('SELECT count(*) AS n FROM outbox WHERE published_at IS NULL');
  say(`outbox rows not yet published at the end: ${outboxLeft}`);
} finally {
  await relay.stop();
  await bus.close();
  await processor.close();
  await pool.end();
  await psp.stop();
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  await admin.end();
}

const result = {
  full: median(full),
  capture: median(captures),
  processor: median(processorOnly),
  bus: median(busOnly),
};
const ratio = result.full / result.processor;
const loadAfter = os.loadavg()[0] ?? 0;
const costText = (pick: (c: { authorize: RoundCost; capture: RoundCost }) => RoundCost) =>
  costs
    .map((c) => `${pick(c).transactions.toFixed(2)} / ${(pick(c).walBytes / 1024).toFixed(1)} KiB`)
    .join('; ');
const section = `## payments: authorizations through the order.placed consumer

Measured ${new Date().toISOString().slice(0, 10)} on ${describeMachine()}. Profile \`${stackConfig.profile}\` (PostgreSQL 15 with fsync on, RabbitMQ 3.10 quorum
queues), a private psp-sandbox process, everything on 127.0.0.1 and sharing the cores. ${ORDERS.toLocaleString('en-US')} \`order.placed.v1\` (\`tok_visa\`)
already in the group's queue per round, then their ${ORDERS.toLocaleString('en-US')} \`order.confirmed.v1\`; ${ROUNDS} alternating rounds after a warm-up, medians shown (all rounds: consumer
${full.map((r) => r.toFixed(0)).join(', ')}; captures ${captures.map((r) => r.toFixed(0)).join(', ')}; processor alone ${processorOnly.map((r) => r.toFixed(0)).join(', ')}; bus alone ${busOnly.map((r) => r.toFixed(0)).join(', ')} /s).
Load average (1 min) when the run began: ${loadBefore.toFixed(1)}; at each round's start: ${roundLoads.map((l) => l.toFixed(1)).join(', ')}; at the end: ${loadAfter.toFixed(1)}.
Deliveries are recorded in batches (ADR 0009): up to ${config.PAYMENTS_BATCH_SIZE} per PostgreSQL transaction, ${config.PAYMENTS_BATCH_CONCURRENCY} such transactions in flight.

| path | per second | PostgreSQL write transactions / WAL per message (each round) |
|---|---|---|
| **payments consumer** (prefetch ${PREFETCH}): delivery → psp-sandbox \`POST /v1/authorizations\` (Idempotency-Key, deadline, breaker) → batched transaction (dedupe, payment, ledger lines, outbox row) → ack; the relay publishes \`payment.authorized.v1\` meanwhile | ${result.full.toFixed(0)} | ${costText((c) => c.authorize)} |
| **captures** (order.confirmed consumer, prefetch ${PREFETCH}): delivery → psp-sandbox capture → batched transaction (dedupe, payment update, ledger lines, outbox row) → ack | ${result.capture.toFixed(0)} | ${costText((c) => c.capture)} |
| baseline: the processor alone, same adapter and concurrency, no bus or database | ${result.processor.toFixed(0)} | — |
| baseline: the bus alone, the same events to a consumer that only acks | ${result.bus.toFixed(0)} | — |

Write transactions count every transaction that wrote (the consumer's and the outbox relay's) while the
round ran, from PostgreSQL's next transaction id; a commit with fsync on is one WAL flush.
The consumer reaches ${ratio.toFixed(2)} × what the sandbox processor alone answers on this machine; the project's
end-to-end goal (≥ 500 confirmed orders/s on 2 cores) needs ≥ 500 authorizations/s here: ${result.full >= 500 ? 'met' : '**not met**'}.
Run: \`npm run bench -- payments\` ([services/payments/bench/authorize.bench.ts](../services/payments/bench/authorize.bench.ts)).`;
writeBenchmarkSection('payments', section);
const benchmarksFile = path.join(repoRoot, 'docs', 'benchmarks.md');
writeFileSync(
  benchmarksFile,
  await format(readFileSync(benchmarksFile, 'utf8'), {
    ...(await resolveConfig(benchmarksFile)),
    filepath: benchmarksFile,
  }),
);
say(
  `consumer ${result.full.toFixed(0)} /s (${ratio.toFixed(2)} × processor alone); written to docs/benchmarks.md`,
);
