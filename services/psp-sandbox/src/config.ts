import {
  durationMs,
  loadConfig,
  port,
  positiveInt,
  serviceEnv,
  url,
  type ConfigOf,
} from '@bazaar/config';

/** The environment of psp-sandbox: the common service variables plus its own. */
export const configSchema = serviceEnv.extend({
  PORT: port().default(4004),
  /** etcd of the local stack: when set, the instance registers there (see @bazaar/registry). */
  ETCD_URL: url({ protocols: ['http', 'https'] }).optional(),
  /** How long a stored Idempotency-Key reply is replayed. */
  PSP_SANDBOX_IDEMPOTENCY_TTL_MS: durationMs().default(24 * 60 * 60 * 1000),
  /** How many Idempotency-Keys are kept at most; the oldest go first. */
  PSP_SANDBOX_IDEMPOTENCY_MAX_KEYS: positiveInt().default(100_000),
  /** How long `tok_slow` takes to approve. */
  PSP_SANDBOX_SLOW_DELAY_MS: durationMs().default(3000),
});

export type Config = ConfigOf<typeof configSchema>;

/** Reads and validates the configuration; throws a ConfigError listing every problem. */
export function readConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Config {
  return loadConfig(configSchema, env);
}
