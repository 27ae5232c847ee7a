import {
  accessTokenEnv,
  type ConfigOf,
  durationMs,
  loadConfig,
  port,
  positiveInt,
  serviceEnv,
  url,
} from '@bazaar/config';
import { z } from 'zod';

const DAY_MS = 24 * 3_600_000;

const flag = () =>
  z
    .enum(['true', 'false'])
    .transform((value) => value === 'true')
    .optional();

/** The environment of orders: the common service variables plus its own. */
export const configSchema = serviceEnv.extend({
  PORT: port().default(4002),
  /** The database is the URL's path (`mongodb://…/orders`); locally FerretDB serves it. */
  MONGO_URL: url({ protocols: ['mongodb', 'mongodb+srv'] }),
  MONGO_POOL_SIZE: positiveInt().default(32),
  RABBITMQ_URL: url({ protocols: ['amqp', 'amqps'] }),
  ETCD_URL: url({ protocols: ['http', 'https'] }).optional(),
  /** Access tokens are verified here too, not only at the gateway. */
  ...accessTokenEnv,

  /** How long a PENDING order waits for its payment decision before it is cancelled (PAYMENT_TIMEOUT). */
  ORDER_PAYMENT_DEADLINE_MS: durationMs().default(30_000),
  /** How often each instance looks for PENDING orders past their deadline. */
  ORDER_SWEEP_INTERVAL_MS: durationMs().default(1_000),
  /** A write lock (product stock, order transition) that outlives this is considered abandoned. */
  LOCK_LEASE_MS: durationMs().default(10_000),
  /** How long an operation waits for a lock before it gives up (503, or the event is retried). */
  LOCK_WAIT_MS: durationMs().default(8_000),
  /**
   * Age after which the janitor resolves a reservation by its order's state (released when the order
   * is missing or cancelled, settled when confirmed). Longer than any placement can take.
   */
  RESERVATION_GRACE_MS: durationMs().default(120_000),
  JANITOR_INTERVAL_MS: durationMs().default(30_000),
  /** Idempotency keys are kept at least 24 h (Stripe's contract). */
  IDEMPOTENCY_KEY_TTL_MS: durationMs()
    .refine((value) => value >= DAY_MS, { message: 'must be at least 24 h (86400000)' })
    .default(DAY_MS),
  /** A key claimed longer ago than this by a request that never finished may be claimed again. */
  IDEMPOTENCY_IN_FLIGHT_MS: durationMs().default(60_000),

  /**
   * The topic exchange events travel on. Every Bazaar service uses the default; a test suite runs
   * its instances on a private one so the stack's other services never react to its events.
   */
  EVENTS_EXCHANGE: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{0,99}$/)
    .default('bazaar.events'),
  /** The consumer group of payment events; every instance of orders shares it. */
  PAYMENT_EVENTS_GROUP: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{0,99}$/)
    .default('orders.payment-events'),
  CONSUMER_PREFETCH: positiveInt().default(64),
  RELAY_BATCH_SIZE: positiveInt().default(200),
  RELAY_POLL_INTERVAL_MS: durationMs().default(200),
  /**
   * Least time between the relay's searches of the whole orders collection (FerretDB reads every
   * document for it). Orders written here are named to the relay directly; the search finds the rest:
   * those of a process that died, or of another instance's relay that died.
   */
  RELAY_SCAN_INTERVAL_MS: durationMs().default(2_000),
  /**
   * How long a published `order.placed` may stay in its order before the relay removes it: the order's
   * transition (a payment outcome usually comes sooner) replaces it in the write it makes anyway.
   */
  RELAY_DEFER_REMOVAL_MS: durationMs().default(5_000),
  /** How long a product's price may be reused for pricing new orders (stock is never cached). */
  CATALOG_CACHE_TTL_MS: durationMs().default(2_000),
  /** Off only for an instance that must not publish (operations, the crash test's first process). */
  OUTBOX_RELAY_ENABLED: flag().default(true),
  /** Seed the catalog with the demo products when it is empty. */
  CATALOG_SEED: flag().default(true),
});

export type Config = ConfigOf<typeof configSchema>;

/** Reads and validates the configuration; throws a ConfigError listing every problem. */
export function readConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Config {
  return loadConfig(configSchema, env);
}
