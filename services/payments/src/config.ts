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

/** The environment of payments: the common service variables plus its own. */
export const configSchema = serviceEnv.extend({
  PORT: port().default(4003),
  DATABASE_URL: url({ protocols: ['postgres', 'postgresql'] }),
  DATABASE_POOL_SIZE: positiveInt().default(20),
  /** Where order events arrive and payment events leave (through the outbox). */
  RABBITMQ_URL: url({ protocols: ['amqp', 'amqps'] }),
  /** The registry each instance registers in (the local stack); unset in Kubernetes (DNS). */
  ETCD_URL: url({ protocols: ['http', 'https'] }).optional(),
  /** Access tokens are verified here too, not only at the gateway. */
  ...accessTokenEnv,

  /** The card processor (psp-sandbox locally). */
  PSP_URL: url({ protocols: ['http', 'https'] }),
  /** Deadline of one processor operation, retries included; above tok_slow's 3 s. */
  PSP_TIMEOUT_MS: durationMs().default(5_000),
  /** Attempts per processor operation (same Idempotency-Key on each). */
  PSP_MAX_ATTEMPTS: positiveInt().default(3),
  /** Consecutive failed processor attempts that open the circuit breaker. */
  PSP_BREAKER_FAILURES: positiveInt().default(5),
  /** How long the breaker stays open before a probe call. */
  PSP_BREAKER_HALF_OPEN_MS: durationMs().default(5_000),
  PSP_CONNECTIONS: positiveInt().default(64),

  /** The topic exchange of the event bus; tests isolate themselves with their own. */
  EVENTS_EXCHANGE: z.string().trim().min(1).default('bazaar.events'),
  /**
   * Prefix of this service's consumer groups (`<prefix>.order-placed`, …): queues are shared by every
   * instance of one deployment; a test runs its own instance on its own groups.
   */
  PAYMENTS_CONSUMER_GROUP_PREFIX: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,63}$/, 'a lower-case name')
    .default('payments'),
  /** Unacknowledged order events per consumer: how many payments are worked on at once. */
  PAYMENTS_PREFETCH: positiveInt().default(64),
  /**
   * Deliveries recorded in one PostgreSQL transaction at most (authorizations, captures; also the
   * lookups per query). A batch is what arrived while the previous one committed: one commit per
   * batch instead of one per delivery.
   */
  PAYMENTS_BATCH_SIZE: positiveInt().default(64),
  /** Such transactions in flight at once, per kind. */
  PAYMENTS_BATCH_CONCURRENCY: positiveInt().default(2),
  /**
   * Deliveries of one order.placed.v1 whose processor outcome stayed unknown (timeouts, 5xx) before
   * the payment is failed as PROCESSOR_UNAVAILABLE.
   */
  PAYMENTS_AUTHORIZE_MAX_ATTEMPTS: positiveInt().default(4),
  /** How often the sweeper voids authorizations of cancelled orders that a crash or race left. */
  PAYMENTS_SWEEP_INTERVAL_MS: durationMs().default(5_000),
});

export type Config = ConfigOf<typeof configSchema>;

/** Reads and validates the configuration; throws a ConfigError listing every problem. */
export function readConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Config {
  return loadConfig(configSchema, env);
}
