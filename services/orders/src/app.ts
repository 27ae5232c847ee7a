import { createAccessTokenVerifier, type VerifyAccessToken } from '@bazaar/auth';
import {
  ensureOutboxIndex,
  startMongoOutboxRelay,
  type EventBus,
  type MongoOutboxRelay,
} from '@bazaar/event-bus';
import type { Logger } from '@bazaar/logging';
import { createApp, type Closer } from '@bazaar/service-kit';
import { createOrderMetrics, type Telemetry } from '@bazaar/telemetry';
import type { FastifyInstance } from 'fastify';
import type { Collection, Db, Document, MongoClient } from 'mongodb';
import { catalogSeed } from './catalog-seed';
import type { Config } from './config';
import { createIdempotencyKeyRepository } from './idempotency-key.repository';
import { createOrderRepository, ensureOrderIndexes, ordersCollection } from './order.repository';
import { registerOrderRoutes } from './order.routes';
import { createOrderService, type OrderService } from './order.service';
import { startDeadlineSweeper, startJanitor } from './order-sweeper';
import { createProductRepository, type ProductRepository } from './product.repository';
import { registerProductRoutes } from './product.routes';
import { consumePaymentEvents } from './payment-events.consumer';

/** What the orders app is built from; `main.ts` passes the real ones, tests their own. */
export interface AppDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly telemetry: Pick<Telemetry, 'tracer' | 'meter' | 'renderMetrics'>;
  readonly mongo: MongoClient;
  /** Names this instance in lock documents. */
  readonly instanceId: string;
  readonly verify?: VerifyAccessToken;
  readonly now?: () => Date;
}

export interface OrdersApp {
  readonly app: FastifyInstance;
  readonly db: Db;
  readonly orders: OrderService;
  readonly products: ProductRepository;
  /** Indexes and the demo catalog: the I/O before serving. */
  prepare(): Promise<void>;
  /**
   * The outbox relay, the payment-events consumer, the deadline sweeper and the janitor. Returns
   * their closers in start order.
   */
  startWorkers(bus: EventBus): Promise<Closer[]>;
}

export function buildApp(deps: AppDeps): OrdersApp {
  const { config, logger, telemetry, mongo, now = () => new Date() } = deps;
  const db = mongo.db();
  const verify =
    deps.verify ??
    createAccessTokenVerifier({
      jwksUrl: config.JWKS_URL,
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
    });
  const lockOptions = {
    db,
    owner: deps.instanceId,
    lockLeaseMs: config.LOCK_LEASE_MS,
    lockWaitMs: config.LOCK_WAIT_MS,
  };
  const products = createProductRepository({
    ...lockOptions,
    logger,
    now,
    pricingCacheTtlMs: config.CATALOG_CACHE_TTL_MS,
  });
  const orderRepository = createOrderRepository(lockOptions);
  let relay: MongoOutboxRelay | undefined;
  const orders = createOrderService({
    orders: orderRepository,
    products,
    keys: createIdempotencyKeyRepository({
      db,
      ttlMs: config.IDEMPOTENCY_KEY_TTL_MS,
      inFlightMs: config.IDEMPOTENCY_IN_FLIGHT_MS,
    }),
    logger,
    paymentDeadlineMs: config.ORDER_PAYMENT_DEADLINE_MS,
    reservationGraceMs: config.RESERVATION_GRACE_MS,
    onEventsWritten: (orderId, entries) => relay?.written([{ id: orderId, entries }]),
    publishedEntries: {
      take: (orderId) => relay?.takePublished(orderId),
      restore: (orderId, entries) => relay?.restorePublished(orderId, entries),
    },
    metrics: createOrderMetrics(telemetry.meter),
    now,
  });

  const app = createApp({
    config,
    logger,
    telemetry,
    readinessChecks: [{ name: 'mongo', check: () => db.command({ ping: 1 }) }],
  });
  registerProductRoutes(app, products);
  registerOrderRoutes(app, { orders, verify });

  return {
    app,
    db,
    orders,
    products,
    async prepare() {
      await ensureOrderIndexes(db);
      await ensureOutboxIndex(ordersCollection(db) as unknown as Collection<Document>);
      if (config.CATALOG_SEED && (await products.isEmpty())) {
        const inserted = await products.insertMissing(catalogSeed(now()));
        logger.info({ inserted }, 'catalog seeded');
      }
    },
    async startWorkers(bus) {
      const closers: Closer[] = [];
      if (config.OUTBOX_RELAY_ENABLED) {
        const started = startMongoOutboxRelay({
          collection: ordersCollection(db) as unknown as Collection<Document>,
          bus,
          logger,
          owner: deps.instanceId,
          batchSize: config.RELAY_BATCH_SIZE,
          pollIntervalMs: config.RELAY_POLL_INTERVAL_MS,
          scanIntervalMs: config.RELAY_SCAN_INTERVAL_MS,
          onLeasesReleased: (orderIds) => orderRepository.leasesReleased(orderIds),
          deferRemovalMs: config.RELAY_DEFER_REMOVAL_MS,
          leaseMs: config.LOCK_LEASE_MS,
        });
        relay = started;
        closers.push({ name: 'outbox relay', close: () => started.stop() });
      }
      const consumer = await consumePaymentEvents({
        bus,
        orders,
        logger,
        group: config.PAYMENT_EVENTS_GROUP,
        prefetch: config.CONSUMER_PREFETCH,
      });
      const sweeper = startDeadlineSweeper(orders, config.ORDER_SWEEP_INTERVAL_MS, logger);
      const janitor = startJanitor(orders, config.JANITOR_INTERVAL_MS, logger);
      // Closed in reverse: the loops and the consumer stop before the relay publishes its last round.
      closers.push(
        { name: 'payment events consumer', close: () => consumer.close(), timeoutMs: 10_000 },
        { name: 'deadline sweeper', close: () => sweeper.stop() },
        { name: 'janitor', close: () => janitor.stop() },
      );
      return closers;
    },
  };
}
