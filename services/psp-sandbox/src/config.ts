import {
  bool,
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
  /** Added before every processor operation: a slower processor for load and deadline tests. */
  PSP_SANDBOX_LATENCY_MS: durationMs().default(0),
  /** Whether `/v1/sandbox/faults` may arm faults; off unless set outside production. */
  PSP_SANDBOX_FAULTS_ENABLED: bool().optional(),
  /** How many authorizations the processor's record keeps; the oldest are forgotten first. */
  PSP_SANDBOX_MAX_AUTHORIZATIONS: positiveInt().default(200_000),
});

export type Config = ConfigOf<typeof configSchema>;

/** Fault injection is a test control: on by default outside production, off in it unless set. */
export function areFaultsEnabled(config: Pick<Config, 'NODE_ENV' | 'PSP_SANDBOX_FAULTS_ENABLED'>) {
  return config.PSP_SANDBOX_FAULTS_ENABLED ?? config.NODE_ENV !== 'production';
}

/** Reads and validates the configuration; throws a ConfigError listing every problem. */
export function readConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Config {
  return loadConfig(configSchema, env);
}
