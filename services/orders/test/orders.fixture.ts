import { randomBytes, randomUUID } from 'node:crypto';
import { createEventBus, type EventBus } from '@bazaar/event-bus';
import { createLogger } from '@bazaar/logging';
import type { Closer } from '@bazaar/service-kit';
import { startTelemetry } from '@bazaar/telemetry';
import { testStack } from '@bazaar/testing';
import { createEvent, validateEvent, type EventTypes } from '@bazaar/contracts';
import { MongoClient, type Db } from 'mongodb';
import { buildApp, type OrdersApp } from '../src/app';
import { readConfig, type Config } from '../src/config';
import { newId } from '../src/order';
import { productsCollection } from '../src/product.repository';

/** A database of the test stack's FerretDB that only this test file uses; dropped at the end. */
export function testDatabaseUrl(name = `orders_test_${randomBytes(4).toString('hex')}`): string {
  return `${testStack().mongo}${name}`;
}

/**
 * A private topic exchange for one test file: the stack's payments (and every other consumer of
 * order events) never sees the file's orders, so the file plays payments' side alone.
 */
export function testExchange(): string {
  return `orders-test-${randomBytes(4).toString('hex')}.events`;
}

/** The environment an orders instance gets in tests, on top of which a test sets its own. */
export function testEnv(
  databaseUrl: string,
  group: string,
  exchange: string,
): Record<string, string> {
  const stack = testStack();
  return {
    NODE_ENV: 'test',
    PORT: '0',
    LOG_LEVEL: 'warn',
    MONGO_URL: databaseUrl,
    RABBITMQ_URL: stack.rabbitmq,
    JWKS_URL: `${stack.url('users')}/.well-known/jwks.json`,
    PAYMENT_EVENTS_GROUP: group,
    EVENTS_EXCHANGE: exchange,
    CATALOG_SEED: 'false',
    ORDER_SWEEP_INTERVAL_MS: '200',
    RELAY_POLL_INTERVAL_MS: '100',
  };
}

export interface RunningOrders {
  readonly url: string;
  readonly config: Config;
  readonly service: OrdersApp;
  readonly db: Db;
  readonly bus: EventBus;
  close(): Promise<void>;
}

/**
 * Starts an orders instance in this process the way `main.ts` composes it (indexes, relay, consumer,
 * sweepers), listening on a free loopback port. Several may share one database: they are instances.
 */
/**
 * One test file's orders world: its own FerretDB database, payment-events group and exchange, the
 * instances it started, and a `close` that stops them and drops the database.
 */
export function ordersTestScope() {
  const databaseUrl = testDatabaseUrl();
  const group = `orders-test-${randomBytes(4).toString('hex')}.payment-events`;
  const exchange = testExchange();
  const running: RunningOrders[] = [];
  return {
    databaseUrl,
    group,
    exchange,
    /** Starts one more orders instance of this scope (`env` on top of the test defaults). */
    async start(env?: Record<string, string>): Promise<RunningOrders> {
      const instance = await startOrders(databaseUrl, {
        group,
        exchange,
        ...(env === undefined ? {} : { env }),
      });
      running.push(instance);
      return instance;
    },
    async close(): Promise<void> {
      for (const instance of running.splice(0)) await instance.close();
      const client = new MongoClient(databaseUrl);
      try {
        await client.db().dropDatabase();
      } finally {
        await client.close();
      }
    },
  };
}

export async function startOrders(
  databaseUrl: string,
  options: { group: string; exchange: string; env?: Record<string, string> },
): Promise<RunningOrders> {
  const config = readConfig({
    ...testEnv(databaseUrl, options.group, options.exchange),
    ...options.env,
  });
  const logger = createLogger({ service: 'orders', level: config.LOG_LEVEL });
  const telemetry = startTelemetry({ serviceName: 'orders' });
  const mongo = new MongoClient(config.MONGO_URL, { maxPoolSize: config.MONGO_POOL_SIZE });
  await mongo.connect();
  const bus = createEventBus({
    url: config.RABBITMQ_URL,
    logger,
    validate: validateEvent,
    name: 'orders-test',
    exchange: config.EVENTS_EXCHANGE,
  });
  const service = buildApp({
    config,
    logger,
    telemetry,
    mongo,
    instanceId: `orders-test:${randomUUID().slice(0, 8)}`,
  });
  await service.prepare();
  const closers: Closer[] = await service.startWorkers(bus);
  const address = await service.app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url: address,
    config,
    service,
    db: service.db,
    bus,
    async close() {
      await service.app.close();
      for (const closer of [...closers].reverse()) await closer.close();
      await bus.close();
      await mongo.close();
    },
  };
}

export interface TestUser {
  readonly id: string;
  readonly token: string;
}

/** Registers a new user in the test stack's users service and logs in: a real access token. */
export async function newUser(): Promise<TestUser> {
  const users = testStack().url('users');
  const email = `orders-${randomBytes(6).toString('hex')}@example.com`;
  const password = 'correct horse battery staple';
  const registered = await fetch(`${users}/v1/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password, name: 'Order Tester' }),
  });
  if (registered.status !== 201) throw new Error(`register: ${registered.status}`);
  const { id } = (await registered.json()) as { id: string };
  const login = await fetch(`${users}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (login.status !== 200) throw new Error(`login: ${login.status}`);
  const { accessToken } = (await login.json()) as { accessToken: string };
  return { id, token: accessToken };
}

/** Adds a product with the given stock straight to the catalog collection. */
export async function addProduct(db: Db, stock: number, amount = 1000): Promise<string> {
  const id = newId('prd');
  await productsCollection(db).insertOne({
    _id: id,
    name: `Test product ${id.slice(-6)}`,
    description: 'For tests.',
    price: { amount, currency: 'USD' },
    stock,
    reservations: {},
    createdAt: new Date(),
  });
  return id;
}

export async function stockOf(
  db: Db,
  productId: string,
): Promise<{ stock: number; reserved: number }> {
  const doc = await productsCollection(db).findOne({ _id: productId });
  if (doc === null) throw new Error(`no product ${productId}`);
  const reserved = Object.values(doc.reservations).reduce((sum, r) => sum + r.quantity, 0);
  return { stock: doc.stock, reserved };
}

export interface PlaceResult {
  readonly status: number;
  readonly body: { id?: string; status?: string; code?: string; total?: { amount: number } };
  readonly replayed: boolean;
}

export async function placeOrder(
  url: string,
  user: TestUser,
  items: { productId: string; quantity: number }[],
  options: { key?: string; token?: string } = {},
): Promise<PlaceResult> {
  const response = await fetch(`${url}/v1/orders`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${user.token}`,
      'content-type': 'application/json',
      'idempotency-key': options.key ?? randomUUID(),
    },
    body: JSON.stringify({ items, payment: { token: options.token ?? 'tok_visa' } }),
  });
  return {
    status: response.status,
    body: (await response.json()) as PlaceResult['body'],
    replayed: response.headers.get('idempotent-replayed') === 'true',
  };
}

export async function getOrder(
  url: string,
  user: TestUser,
  orderId: string,
): Promise<{ status: number; body: { status?: string; cancelReason?: string } }> {
  const response = await fetch(`${url}/v1/orders/${orderId}`, {
    headers: { authorization: `Bearer ${user.token}` },
  });
  return { status: response.status, body: (await response.json()) as { status?: string } };
}

type OrderEvents = Pick<
  EventTypes,
  'order.placed.v1' | 'order.confirmed.v1' | 'order.cancelled.v1'
>;
export type OrderEvent = OrderEvents[keyof OrderEvents];

/** Records every order.* event that reaches the broker, through a consumer group of its own. */
export async function tapOrderEvents(bus: EventBus): Promise<{
  events: OrderEvent[];
  of(orderId: string): OrderEvent[];
  close(): Promise<void>;
}> {
  const events: OrderEvent[] = [];
  const record = (event: OrderEvent) => {
    events.push(event);
    return Promise.resolve();
  };
  const consumer = await bus.consume<OrderEvents>({
    group: `orders-test-tap-${randomBytes(4).toString('hex')}`,
    handlers: {
      'order.placed.v1': record,
      'order.confirmed.v1': record,
      'order.cancelled.v1': record,
    },
  });
  return {
    events,
    of: (orderId) => events.filter((event) => event.data.orderId === orderId),
    close: () => consumer.close(),
  };
}

/** Publishes the payment outcome that payments would, as a real event on the broker. */
export async function publishPayment(
  bus: EventBus,
  order: { id: string; userId: string; amount: number },
  outcome: 'authorized' | 'declined' | 'unavailable',
  paymentId = newId('ord').replace('ord_', 'pay_'),
  eventId: string = randomUUID(),
): Promise<void> {
  const amount = { amount: order.amount, currency: 'USD' };
  const now = new Date().toISOString();
  if (outcome === 'authorized') {
    await bus.publish(
      createEvent('payment.authorized.v1', {
        id: eventId,
        source: '/payments',
        subject: paymentId,
        data: {
          paymentId,
          orderId: order.id,
          userId: order.userId,
          amount,
          authorizationId: `auth_${randomBytes(6).toString('hex')}`,
          authorizedAt: now,
        },
      }),
    );
    return;
  }
  await bus.publish(
    createEvent('payment.failed.v1', {
      id: eventId,
      source: '/payments',
      subject: paymentId,
      data: {
        paymentId,
        orderId: order.id,
        userId: order.userId,
        amount,
        reason:
          outcome === 'declined'
            ? { code: 'CARD_DECLINED', message: 'The card was declined.' }
            : { code: 'PROCESSOR_UNAVAILABLE', message: 'The processor could not be reached.' },
        failedAt: now,
      },
    }),
  );
}
