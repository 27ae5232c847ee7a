import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  createEvent,
  validateEvent,
  type BazaarEvent,
  type EventTypes,
  type OrderPlacedV1,
} from '@bazaar/contracts';
import {
  createEventBus,
  startPgOutboxRelay,
  type Consumer,
  type EventBus,
  type PgOutboxRelay,
} from '@bazaar/event-bus';
import { createLogger } from '@bazaar/logging';
import { freePort } from '@bazaar/stack';
import { startTelemetry } from '@bazaar/telemetry';
import { eventually, testStack } from '@bazaar/testing';
import { connect } from 'amqplib';
import pg from 'pg';
import { buildApp, type PaymentsApp } from '../src/app';
import { readConfig, type Config } from '../src/config';
import { createPool, migrate } from '../src/database';
import { startOrderCancelledConsumer } from '../src/order-cancelled.consumer';
import { startOrderConfirmedConsumer } from '../src/order-confirmed.consumer';
import { startOrderPlacedConsumer } from '../src/order-placed.consumer';
import { childPath, isTestLogEnabled } from './config';
import { findLedgerViolations } from '../src/payment.repository';
import type { PaymentProcessor } from '../src/processor';
import { pspSandboxProcessorFromConfig } from '../src/psp-sandbox.processor';
import { startVoidSweeper, type Sweeper } from '../src/void.sweeper';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const logger = createLogger({
  service: 'payments',
  level: isTestLogEnabled ? 'debug' : 'silent',
});

// ---------------------------------------------------------------------------------------------
// A database of the test stack's PostgreSQL for one test file, dropped at the end.

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

async function withAdminClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testStack().postgres });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `payments_test_${randomBytes(5).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE "${name}"`));
  return {
    name,
    url: testStack().postgresDatabase(name),
    drop: () =>
      withAdminClient((client) =>
        client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
      ).then(() => undefined),
  };
}

// ---------------------------------------------------------------------------------------------
// Child processes: a private psp-sandbox (stopped and started by the breaker tests) and the built
// payments bundle (killed with SIGKILL by the crash test). Both are the bundles the stack builds.

export interface ChildService {
  readonly url: string;
  readonly port: number;
  readonly pid: number | undefined;
  /** Starts it (again) on the same port and waits until /readyz answers 200. */
  start(): Promise<void>;
  /** SIGTERM, and waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL, and waits for the exit: nothing runs its shutdown. */
  kill(): Promise<void>;
}

async function waitForExit(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((resolve) => child.once('exit', resolve));
}

export async function startChildService(
  service: 'psp-sandbox' | 'payments',
  env: Readonly<Record<string, string>>,
): Promise<ChildService> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const handle: ChildService = {
    url,
    port,
    get pid() {
      return child?.pid;
    },
    async start() {
      child = spawn(process.execPath, [`${repoRoot}services/${service}/dist/main.mjs`], {
        cwd: `${repoRoot}services/${service}`,
        env: {
          PATH: childPath,
          NODE_ENV: 'test',
          HOST: '127.0.0.1',
          PORT: String(port),
          LOG_LEVEL: 'warn',
          SERVICE_INSTANCE_ID: `${service}-test`,
          ...env,
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const started = child;
      await eventually(
        async () => {
          if (started.exitCode !== null) throw new Error(`${service} exited ${started.exitCode}`);
          const response = await fetch(`${url}/readyz`);
          return response.status === 200 ? true : undefined;
        },
        { timeoutMs: 30_000, what: `${service} ready` },
      );
    },
    async stop() {
      const current = child;
      current?.kill('SIGTERM');
      await waitForExit(current);
    },
    async kill() {
      const current = child;
      current?.kill('SIGKILL');
      await waitForExit(current);
    },
  };
  await handle.start();
  return handle;
}

/** A private psp-sandbox process with fault injection enabled. */
export function startPsp(env: Readonly<Record<string, string>> = {}): Promise<ChildService> {
  return startChildService('psp-sandbox', { PSP_SANDBOX_FAULTS_ENABLED: 'true', ...env });
}

export interface ProcessorRecord {
  id: string;
  status: 'approved' | 'captured' | 'voided';
  reference: string;
  amount: { amount: number; currency: string };
  capturedAmount: number;
  refundedAmount: number;
}

/** The processor's own record of authorizations (optionally of one reference). */
export async function processorRecords(
  pspUrl: string,
  reference?: string,
): Promise<ProcessorRecord[]> {
  const query = reference === undefined ? '' : `?reference=${encodeURIComponent(reference)}`;
  const response = await fetch(`${pspUrl}/v1/authorizations${query}`);
  if (response.status !== 200) throw new Error(`psp list: ${response.status}`);
  return ((await response.json()) as { items: ProcessorRecord[] }).items;
}

/** Arms a fault on the private psp-sandbox (see services/psp-sandbox/src/fault.ts). */
export async function armFault(
  pspUrl: string,
  rule: { mode: string; operation?: string; count?: number; delayMs?: number },
): Promise<void> {
  const response = await fetch(`${pspUrl}/v1/sandbox/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(rule),
  });
  if (response.status !== 201) throw new Error(`arm fault: ${response.status}`);
}

export async function clearFaults(pspUrl: string): Promise<void> {
  await fetch(`${pspUrl}/v1/sandbox/faults`, { method: 'DELETE' });
}

// ---------------------------------------------------------------------------------------------
// payments in this process, wired as main.ts wires it, on its own exchange and consumer groups.

export interface RunningPayments {
  readonly url: string;
  readonly config: Config;
  readonly payments: PaymentsApp;
  readonly pool: pg.Pool;
  readonly processor: PaymentProcessor;
  readonly consumers: readonly Consumer[];
  close(): Promise<void>;
}

/** An exchange and consumer-group prefix of one test file, so nothing else sees its events. */
export interface Isolation {
  readonly exchange: string;
  readonly groupPrefix: string;
}

export function isolation(): Isolation {
  const suffix = randomBytes(4).toString('hex');
  return { exchange: `payments-test-${suffix}`, groupPrefix: `payments-test-${suffix}` };
}

export function paymentsEnv(
  databaseUrl: string,
  pspUrl: string,
  scope: Isolation,
): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    RABBITMQ_URL: testStack().rabbitmq,
    PSP_URL: pspUrl,
    JWKS_URL: `${testStack().url('users')}/.well-known/jwks.json`,
    EVENTS_EXCHANGE: scope.exchange,
    PAYMENTS_CONSUMER_GROUP_PREFIX: scope.groupPrefix,
  };
}

export async function startPayments(
  databaseUrl: string,
  pspUrl: string,
  scope: Isolation,
  env: Readonly<Record<string, string>> = {},
): Promise<RunningPayments> {
  const config = readConfig({
    NODE_ENV: 'test',
    PORT: '0',
    LOG_LEVEL: 'silent',
    ...paymentsEnv(databaseUrl, pspUrl, scope),
    ...env,
  });
  const telemetry = startTelemetry({ serviceName: 'payments' });
  const pool = createPool({
    connectionString: config.DATABASE_URL,
    logger,
    max: config.DATABASE_POOL_SIZE,
    statementTimeoutMs: config.REQUEST_TIMEOUT_MS,
  });
  const processor = pspSandboxProcessorFromConfig(config);
  const bus = createEventBus({
    url: config.RABBITMQ_URL,
    logger,
    validate: validateEvent,
    name: 'payments-test',
    exchange: config.EVENTS_EXCHANGE,
  });
  const payments = buildApp({ config, logger, telemetry, pool, processor });
  await migrate(pool, logger);
  const relay: PgOutboxRelay = startPgOutboxRelay({ pool, bus, logger, pollIntervalMs: 200 });
  const prefix = config.PAYMENTS_CONSUMER_GROUP_PREFIX;
  const consumers = await Promise.all([
    startOrderPlacedConsumer(bus, payments.service, {
      prefetch: config.PAYMENTS_PREFETCH,
      maxAttempts: config.PAYMENTS_AUTHORIZE_MAX_ATTEMPTS,
      group: `${prefix}.order-placed`,
    }),
    startOrderConfirmedConsumer(bus, payments.service, {
      prefetch: config.PAYMENTS_PREFETCH,
      group: `${prefix}.order-confirmed`,
    }),
    startOrderCancelledConsumer(bus, payments.service, {
      prefetch: config.PAYMENTS_PREFETCH,
      group: `${prefix}.order-cancelled`,
    }),
  ]);
  const sweeper: Sweeper = startVoidSweeper({
    service: payments.service,
    intervalMs: config.PAYMENTS_SWEEP_INTERVAL_MS,
    logger,
  });
  await payments.app.listen({ host: '127.0.0.1', port: 0 });
  const address = payments.app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    config,
    payments,
    pool,
    processor,
    consumers,
    async close() {
      await payments.app.close();
      await sweeper.stop();
      for (const consumer of consumers) await consumer.close();
      await relay.stop();
      await bus.close();
      await processor.close();
      await pool.end();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Events: an "orders" side that publishes order events and records what payments publishes.

export interface OrdersSide {
  readonly bus: EventBus;
  /** Every payment.* event received, in arrival order. */
  readonly received: BazaarEvent[];
  publish(...events: BazaarEvent[]): Promise<void>;
  /** The payment.* events of one order. */
  eventsOf(orderId: string): BazaarEvent[];
  /** Waits for an event of `type` for `orderId`. */
  waitFor<T extends keyof EventTypes>(
    type: T,
    orderId: string,
    timeoutMs?: number,
  ): Promise<EventTypes[T]>;
  close(): Promise<void>;
}

export async function startOrdersSide(scope: Isolation): Promise<OrdersSide> {
  const bus = createEventBus({
    url: testStack().rabbitmq,
    logger,
    validate: validateEvent,
    name: 'orders-test',
    exchange: scope.exchange,
  });
  const received: BazaarEvent[] = [];
  const record = (event: BazaarEvent) => {
    received.push(event);
    return Promise.resolve();
  };
  const consumer = await bus.consume<EventTypes>({
    group: `${scope.groupPrefix}-orders`,
    prefetch: 256,
    handlers: {
      'payment.authorized.v1': record,
      'payment.failed.v1': record,
      'payment.captured.v1': record,
      'payment.voided.v1': record,
      'payment.refunded.v1': record,
    },
  });
  const orderIdOf = (event: BazaarEvent) =>
    (event.data as { orderId?: string }).orderId ?? undefined;
  const side: OrdersSide = {
    bus,
    received,
    async publish(...events) {
      for (const event of events) await bus.publish(event);
    },
    eventsOf: (orderId) => received.filter((event) => orderIdOf(event) === orderId),
    waitFor: (type, orderId, timeoutMs = 20_000) =>
      eventually(
        () =>
          received.find((event) => event.type === type && orderIdOf(event) === orderId) as
            EventTypes[typeof type] | undefined,
        { timeoutMs, intervalMs: 50, what: `${type} for ${orderId}` },
      ),
    async close() {
      await consumer.close();
      await bus.close();
    },
  };
  return side;
}

/** Deletes the queues of the file's consumer groups and its exchange from the test broker. */
export async function removeBrokerObjects(scope: Isolation): Promise<void> {
  const connection = await connect(testStack().rabbitmq);
  try {
    const channel = await connection.createChannel();
    const groups = ['order-placed', 'order-confirmed', 'order-cancelled'].map(
      (purpose) => `${scope.groupPrefix}.${purpose}`,
    );
    groups.push(`${scope.groupPrefix}-orders`);
    for (const group of groups) {
      for (const queue of [
        group,
        `${group}.dlq`,
        `${group}.retry.1s`,
        `${group}.retry.2s`,
        `${group}.retry.4s`,
        `${group}.retry.5s`,
        `${group}.retry.30s`,
      ]) {
        await channel.deleteQueue(queue);
      }
    }
    await channel.deleteExchange(scope.exchange);
    await channel.close();
  } finally {
    await connection.close();
  }
}

export function newOrderId(): string {
  return `ord_${randomBytes(12).toString('base64url')}`;
}

export function newUserId(): string {
  return `usr_${randomBytes(12).toString('base64url')}`;
}

/** An order.placed.v1 as orders publishes it. */
export function orderPlaced(
  overrides: {
    orderId?: string;
    userId?: string;
    token?: string;
    amount?: number;
    currency?: string;
    deadlineMs?: number;
  } = {},
): OrderPlacedV1 {
  const orderId = overrides.orderId ?? newOrderId();
  const amount = overrides.amount ?? 6499;
  const currency = overrides.currency ?? 'USD';
  const placedAt = new Date();
  return createEvent('order.placed.v1', {
    source: '/orders',
    subject: orderId,
    data: {
      orderId,
      userId: overrides.userId ?? newUserId(),
      items: [
        {
          productId: 'prd_test0000000000000000001',
          name: 'Test product',
          quantity: 1,
          unitPrice: { amount, currency },
        },
      ],
      total: { amount, currency },
      paymentToken: overrides.token ?? 'tok_visa',
      placedAt: placedAt.toISOString(),
      deadline: new Date(placedAt.getTime() + (overrides.deadlineMs ?? 30_000)).toISOString(),
    },
  });
}

export function orderConfirmed(placed: OrderPlacedV1, paymentId: string) {
  return createEvent('order.confirmed.v1', {
    source: '/orders',
    subject: placed.data.orderId,
    data: {
      orderId: placed.data.orderId,
      userId: placed.data.userId,
      paymentId,
      total: placed.data.total,
      confirmedAt: new Date().toISOString(),
    },
  });
}

export function orderCancelled(
  placed: OrderPlacedV1,
  reason: 'PAYMENT_DECLINED' | 'PAYMENT_TIMEOUT' | 'PAYMENT_UNAVAILABLE' | 'USER_CANCELLED',
) {
  return createEvent('order.cancelled.v1', {
    source: '/orders',
    subject: placed.data.orderId,
    data: {
      orderId: placed.data.orderId,
      userId: placed.data.userId,
      reason,
      releasedItems: [{ productId: 'prd_test0000000000000000001', quantity: 1 }],
      total: placed.data.total,
      cancelledAt: new Date().toISOString(),
    },
  });
}

/** A fresh event id for a copy of `event` (orders never does this; used to prove per-order dedupe). */
export function withNewId<E extends BazaarEvent>(event: E): E {
  return { ...event, id: randomUUID() };
}

// ---------------------------------------------------------------------------------------------
// Database reads for assertions.

export interface PaymentRow {
  id: string;
  order_id: string;
  status: string;
  amount: string;
  captured_amount: string;
  refunded_amount: string;
  authorization_id: string | null;
  failure_code: string | null;
}

export async function paymentOf(pool: pg.Pool, orderId: string): Promise<PaymentRow | undefined> {
  const { rows } = await pool.query<PaymentRow>('SELECT * FROM payments WHERE order_id = $1', [
    orderId,
  ]);
  return rows[0];
}

export async function outboxTypesOf(pool: pg.Pool, paymentId: string): Promise<string[]> {
  const { rows } = await pool.query<{ type: string }>(
    `SELECT type FROM outbox WHERE payload->>'subject' = $1 ORDER BY id`,
    [paymentId],
  );
  return rows.map((row) => row.type);
}

/** Asserts the SQL ledger invariants over the whole database. */
export async function expectLedgerConsistent(pool: pg.Pool): Promise<void> {
  const violations = await findLedgerViolations(pool);
  if (violations.length > 0) {
    throw new Error(`ledger invariants violated:\n${JSON.stringify(violations, null, 2)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Tokens from the test stack's users service.

export async function login(email: string, password: string): Promise<string> {
  const response = await fetch(`${testStack().url('users')}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (response.status !== 200) throw new Error(`login failed: ${response.status}`);
  return ((await response.json()) as { accessToken: string }).accessToken;
}

/** Registers a customer and logs in: its id and access token. */
export async function registerCustomer(): Promise<{ userId: string; token: string }> {
  const email = `payments-${randomBytes(5).toString('hex')}@example.com`;
  const password = 'correct horse battery staple';
  const response = await fetch(`${testStack().url('users')}/v1/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password, name: 'Payments Test' }),
  });
  if (response.status !== 201) throw new Error(`registration failed: ${response.status}`);
  const { id } = (await response.json()) as { id: string };
  return { userId: id, token: await login(email, password) };
}

export async function adminToken(): Promise<string> {
  const { email, password } = testStack().admin;
  return login(email, password);
}

// ---------------------------------------------------------------------------------------------
// One test file's world, set up and torn down the same way by every file that runs payments
// in-process (the crash test runs the bundle as a child instead).

export interface PaymentsTestScope {
  readonly scope: Isolation;
  readonly database: TestDatabase;
  readonly psp: ChildService;
  readonly payments: RunningPayments;
  readonly orders: OrdersSide;
  /**
   * Checks the ledger invariants over everything the file did (SQL), then stops everything and
   * drops the database and broker objects — also when the check fails.
   */
  close(): Promise<void>;
}

/**
 * Its own database, a private psp-sandbox process (`pspEnv`), payments in-process (`paymentsEnv`)
 * and the orders side on private broker objects. What was started before a failed step is torn
 * down before the error is rethrown.
 */
export async function paymentsTestScope(
  options: {
    readonly pspEnv?: Readonly<Record<string, string>>;
    readonly paymentsEnv?: Readonly<Record<string, string>>;
  } = {},
): Promise<PaymentsTestScope> {
  const scope = isolation();
  const teardown: (() => Promise<unknown>)[] = [() => removeBrokerObjects(scope)];
  const tearDown = async () => {
    for (const step of teardown.reverse()) await step();
  };
  try {
    const database = await createTestDatabase();
    teardown.push(() => database.drop());
    const psp = await startPsp(options.pspEnv);
    teardown.push(() => psp.stop());
    const payments = await startPayments(database.url, psp.url, scope, options.paymentsEnv);
    teardown.push(() => payments.close());
    const orders = await startOrdersSide(scope);
    teardown.push(() => orders.close());
    return {
      scope,
      database,
      psp,
      payments,
      orders,
      async close() {
        try {
          await expectLedgerConsistent(payments.pool);
        } finally {
          await tearDown();
        }
      },
    };
  } catch (error) {
    await tearDown();
    throw error;
  }
}
