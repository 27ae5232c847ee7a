import {
  accessTokenEnv,
  bool,
  type ConfigOf,
  durationMs,
  loadConfig,
  port,
  positiveInt,
  secret,
  serviceEnv,
  url,
} from '@bazaar/config';
import { z } from 'zod';

/** The development client secret the users service grants `notifications` outside production. */
export const DEV_USERS_CLIENT_SECRET = 'dev-only-client-secret-notifications';

const address = z.string().trim().min(3).max(254).regex(/@/, 'an email address');

/** The environment of notifications: the common service variables plus its own. */
export const configSchema = serviceEnv
  .extend({
    PORT: port().default(4005),
    DATABASE_URL: url({ protocols: ['postgres', 'postgresql'] }),
    DATABASE_POOL_SIZE: positiveInt().default(10),
    RABBITMQ_URL: url({ protocols: ['amqp', 'amqps'] }),
    /** The registry each instance registers in (the local stack); unset in Kubernetes (DNS). */
    ETCD_URL: url({ protocols: ['http', 'https'] }).optional(),

    /** Access tokens are verified here too, not only at the gateway. */
    ...accessTokenEnv,

    /**
     * The consumer group of this service on the event bus. Every instance of one deployment shares
     * it; tests give their private instances their own so they never compete with the stack's.
     */
    CONSUMER_GROUP: z.string().trim().min(1).default('notifications.events'),

    /** The SMTP relay (`smtp://` plain or STARTTLS when offered, `smtps://` implicit TLS; user:pass in the URL). */
    SMTP_URL: url({ protocols: ['smtp', 'smtps'] }),
    /** Deadline of each SMTP phase (connect, greeting, each command): a stalled relay costs at most this. */
    SMTP_TIMEOUT_MS: durationMs().default(10_000),
    SMTP_POOL_SIZE: positiveInt().default(4),
    MAIL_FROM: z.string().trim().min(3).default('Bazaar <no-reply@bazaar.local>'),
    /** Right-hand side of every Message-ID this service generates. */
    MAIL_MESSAGE_ID_DOMAIN: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9.-]+$/, 'a domain name')
      .default('notifications.bazaar.local'),
    /**
     * A MailDev-compatible REST API (`GET /api/email?headers.message-id=…`) that tells whether a
     * message reached the relay; when set, an attempt whose outcome is unknown (a crash between
     * sending and recording) is looked up there before sending again. See ADR 0005.
     */
    MAIL_RECONCILE_URL: url({ protocols: ['http', 'https'] }).optional(),

    /** How many deliveries one instance claims per round, and sends concurrently. */
    DELIVERY_BATCH_SIZE: positiveInt().default(16),
    /** Polling interval of the delivery dispatcher (it is also woken when new deliveries commit). */
    DELIVERY_POLL_MS: durationMs().default(500),
    /** How long a claimed delivery belongs to its instance; after it an attempt is "in doubt". */
    DELIVERY_LEASE_MS: durationMs().default(60_000),
    /** Attempts before a delivery is dead-lettered (SMTP down longer than the backoff sum). */
    DELIVERY_MAX_ATTEMPTS: positiveInt().default(12),
    DELIVERY_BACKOFF_BASE_MS: durationMs().default(1_000),
    DELIVERY_BACKOFF_MAX_MS: durationMs().default(60_000),

    OPERATORS_EMAIL: address,
    /** Alertmanager's `Authorization: Bearer` credential for `POST /v1/alerts/alertmanager`. */
    ALERT_WEBHOOK_TOKEN: secret({ minLength: 32 }),

    /** The users service, for addresses not (yet) projected from `user.registered.v1`. */
    USERS_URL: url({ protocols: ['http', 'https'] }).optional(),
    USERS_CLIENT_ID: z.string().trim().min(1).default('notifications'),
    USERS_CLIENT_SECRET: secret({
      minLength: 32,
      localDefault: DEV_USERS_CLIENT_SECRET,
    }),
    USERS_TIMEOUT_MS: durationMs().default(2_000),

    /**
     * Fault injection for the crash test: the process SIGKILLs itself right after the relay
     * accepted a message and before the delivery is recorded. Refused in production.
     */
    FAULT_CRASH_AFTER_SEND: bool().default(false),
  })
  .superRefine((config, ctx) => {
    if (config.FAULT_CRASH_AFTER_SEND && config.NODE_ENV === 'production') {
      ctx.addIssue({
        code: 'custom',
        path: ['FAULT_CRASH_AFTER_SEND'],
        message: 'fault injection is refused in production',
      });
    }
    // A lease shorter than one SMTP exchange would let a second instance take over a delivery
    // that is still being sent.
    if (config.DELIVERY_LEASE_MS < 4 * config.SMTP_TIMEOUT_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['DELIVERY_LEASE_MS'],
        message: 'must be at least 4 × SMTP_TIMEOUT_MS',
      });
    }
  });

export type Config = ConfigOf<typeof configSchema>;

/** Reads and validates the configuration; throws a ConfigError listing every problem. */
export function readConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Config {
  return loadConfig(configSchema, env);
}
