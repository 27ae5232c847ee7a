import {
  csv,
  durationMs,
  loadConfig,
  port,
  positiveInt,
  secret,
  serviceEnv,
  url,
  type ConfigOf,
} from '@bazaar/config';
import { z } from 'zod';

/** The development key-encryption key: accepted outside production only. */
export const DEV_KEY_ENCRYPTION_KEY = 'dev-only-users-key-encryption-key-never-in-production';

/** Prefix of the development client secrets: accepted outside production only. */
export const DEV_CLIENT_SECRET_PREFIX = 'dev-only-client-secret-';

/** Services that get a development client (audience `users`) when `SERVICE_CLIENTS` is unset. */
const DEV_CLIENT_IDS = ['gateway', 'orders', 'payments', 'notifications', 'analytics'] as const;

const serviceName = z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'a lower-case service name');

const serviceClient = z.object({
  id: serviceName,
  // Parsed inside loadConfig's parse, so the production secret policy applies here too.
  secret: secret({
    minLength: 32,
    knownDefaults: DEV_CLIENT_IDS.map((id) => `${DEV_CLIENT_SECRET_PREFIX}${id}`),
  }),
  audiences: z.array(serviceName).min(1),
});

/** A service allowed to obtain client-credentials tokens, and for which audiences. */
export type ServiceClient = z.output<typeof serviceClient>;

/** `SERVICE_CLIENTS`: a JSON array `[{"id":"orders","secret":"…","audiences":["users"]}]`. */
function serviceClients() {
  return z.string().transform((raw, ctx): ServiceClient[] => {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      ctx.issues.push({ code: 'custom', message: 'expected a JSON array', input: '[hidden]' });
      return z.NEVER;
    }
    const parsed = z.array(serviceClient).safeParse(value);
    if (!parsed.success) {
      // Messages name the place, never the value: the array holds secrets.
      for (const issue of parsed.error.issues) {
        ctx.issues.push({
          code: 'custom',
          message: `[${issue.path.join('.')}] ${issue.message}`,
          input: '[hidden]',
        });
      }
      return z.NEVER;
    }
    return parsed.data;
  });
}

/** Argon2id parameters below OWASP's minimum (m = 19 MiB, t = 2) are refused. */
const ARGON2_MIN_MEMORY_KIB = 19_456;
const ARGON2_MIN_TIME_COST = 2;

/** The environment of users: the common service variables plus its own. */
export const configSchema = serviceEnv
  .extend({
    PORT: port().default(4001),
    DATABASE_URL: url({ protocols: ['postgres', 'postgresql'] }),
    DATABASE_POOL_SIZE: positiveInt().default(10),
    REDIS_URL: url({ protocols: ['redis', 'rediss'] }),
    /** Every Redis call's deadline: a dead or stalled Redis costs at most this per call. */
    REDIS_COMMAND_TIMEOUT_MS: durationMs().default(100),
    /** Prefix of every Redis key this service writes (tests isolate themselves with it). */
    REDIS_KEY_PREFIX: z.string().trim().min(1).default('users:'),
    /** Where the outbox relay publishes `user.registered.v1`. */
    RABBITMQ_URL: url({ protocols: ['amqp', 'amqps'] }),
    /** The registry each instance registers in (the local stack); unset in Kubernetes (DNS). */
    ETCD_URL: url({ protocols: ['http', 'https'] }).optional(),

    /** `iss` of every token this service signs. */
    JWT_ISSUER: z.string().trim().min(1).default('bazaar-users'),
    /** `aud` of user access tokens: the public API. */
    JWT_AUDIENCE: z.string().trim().min(1).default('bazaar-api'),
    ACCESS_TOKEN_TTL_MS: durationMs().default(15 * 60_000),
    REFRESH_TOKEN_TTL_MS: durationMs().default(30 * 24 * 3_600_000),
    SERVICE_TOKEN_TTL_MS: durationMs().default(5 * 60_000),
    /** Accepted clock difference when checking `exp`, `nbf` and `iat`. */
    JWT_CLOCK_TOLERANCE_MS: durationMs().default(5_000),
    /** How often each instance reloads the signing keys (it also reloads on an unknown `kid`). */
    SIGNING_KEYS_RELOAD_MS: durationMs().default(30_000),
    /** Encrypts the signing keys' private halves at rest (AES-256-GCM, key derived with HKDF). */
    USERS_KEY_ENCRYPTION_KEY: secret({ minLength: 32, localDefault: DEV_KEY_ENCRYPTION_KEY }),

    ARGON2_MEMORY_KIB: positiveInt()
      .refine((value) => value >= ARGON2_MIN_MEMORY_KIB, {
        message: `must be at least ${ARGON2_MIN_MEMORY_KIB} (19 MiB)`,
      })
      .default(ARGON2_MIN_MEMORY_KIB),
    ARGON2_TIME_COST: positiveInt()
      .refine((value) => value >= ARGON2_MIN_TIME_COST, {
        message: `must be at least ${ARGON2_MIN_TIME_COST}`,
      })
      .default(ARGON2_MIN_TIME_COST),
    ARGON2_PARALLELISM: positiveInt().default(1),

    /** Failed logins per account and client address before further attempts get 429. */
    LOGIN_MAX_FAILURES: positiveInt().default(5),
    LOGIN_FAILURE_WINDOW_MS: durationMs().default(15 * 60_000),
    /**
     * Peers whose `X-Forwarded-For` is believed (the gateway's addresses). Empty: the socket's
     * address is the client's.
     */
    TRUSTED_PROXIES: csv().default([]),

    PROFILE_CACHE_TTL_MS: durationMs().default(5 * 60_000),
    /** How long one instance may hold the right to refill a profile before others give up waiting. */
    PROFILE_CACHE_LOCK_MS: durationMs().default(1_000),

    /** The local admin: both or neither. */
    ADMIN_EMAIL: z.string().trim().min(3).optional(),
    ADMIN_PASSWORD: secret({ minLength: 12 }).optional(),

    /** Services allowed to obtain tokens; development clients when unset outside production. */
    SERVICE_CLIENTS: serviceClients().optional(),
  })
  .superRefine((config, ctx) => {
    if ((config.ADMIN_EMAIL === undefined) !== (config.ADMIN_PASSWORD === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [config.ADMIN_EMAIL === undefined ? 'ADMIN_EMAIL' : 'ADMIN_PASSWORD'],
        message: 'ADMIN_EMAIL and ADMIN_PASSWORD are set together or not at all',
      });
    }
  });

export type Config = ConfigOf<typeof configSchema>;

/**
 * The clients allowed to obtain service tokens: `SERVICE_CLIENTS`, or — when unset outside
 * production — one development client per service, each allowed to call users, with clearly named
 * non-secrets. Production without `SERVICE_CLIENTS` has no clients.
 */
export function serviceClientsOf(
  config: Pick<Config, 'NODE_ENV' | 'SERVICE_CLIENTS'>,
): NonNullable<Config['SERVICE_CLIENTS']> {
  if (config.SERVICE_CLIENTS !== undefined) return config.SERVICE_CLIENTS;
  if (config.NODE_ENV === 'production') return [];
  return DEV_CLIENT_IDS.map((id) => ({
    id,
    secret: `${DEV_CLIENT_SECRET_PREFIX}${id}`,
    audiences: ['users'],
  }));
}

/** Reads and validates the configuration; throws a ConfigError listing every problem. */
export function readConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Config {
  return loadConfig(configSchema, env);
}
