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

/** The environment of analytics: the common service variables plus its own. */
export const configSchema = serviceEnv
  .extend({
    PORT: port().default(4006),
    /** Where every event arrives from. */
    RABBITMQ_URL: url({ protocols: ['amqp', 'amqps'] }),
    /** The registry each instance registers in (the local stack); unset in Kubernetes (DNS). */
    ETCD_URL: url({ protocols: ['http', 'https'] }).optional(),
    /** Access tokens are verified here too, not only at the gateway. */
    ...accessTokenEnv,

    /** `duckdb` (embedded, the default) or `bigquery`. */
    WAREHOUSE_BACKEND: z.enum(['duckdb', 'bigquery']).default('duckdb'),
    /** The DuckDB file; its directory is created. Only one process may open it. */
    WAREHOUSE_PATH: z.string().trim().min(1).optional(),
    /** DuckDB memory limit (e.g. `1GB`); DuckDB's own default (80 % of RAM) when unset. */
    WAREHOUSE_MEMORY_LIMIT: z
      .string()
      .regex(/^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$/i, 'a size such as 512MB or 2GB')
      .optional(),
    BIGQUERY_PROJECT_ID: z.string().trim().min(1).optional(),
    BIGQUERY_DATASET: z
      .string()
      .regex(/^[A-Za-z0-9_]{1,1024}$/, 'letters, digits and underscores')
      .default('bazaar_analytics'),
    BIGQUERY_LOCATION: z.string().trim().min(1).default('US'),
    /** Another BigQuery API endpoint, e.g. the BigQuery emulator (`http://127.0.0.1:9050`). */
    BIGQUERY_API_ENDPOINT: url({ protocols: ['http', 'https'] }).optional(),

    /**
     * The consumer group (queue) the events arrive through. Every instance of the service uses the
     * default; a test runs its own instance on its own group and warehouse.
     */
    CONSUMER_GROUP: z
      .string()
      .regex(/^analytics\.[a-z0-9][a-z0-9.-]{0,100}$/, 'analytics.<purpose>')
      .default('analytics.events'),
    /** A batch is written when it holds this many events… */
    BATCH_MAX_EVENTS: positiveInt().default(2_000),
    /** …or when its first event has waited this long. */
    BATCH_MAX_WAIT_MS: durationMs().default(200),
    /** Unacknowledged deliveries; above BATCH_MAX_EVENTS so that a batch fills while one is written. */
    CONSUMER_PREFETCH: positiveInt().optional(),
  })
  .superRefine((config, ctx) => {
    if (config.WAREHOUSE_BACKEND === 'duckdb' && config.WAREHOUSE_PATH === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['WAREHOUSE_PATH'],
        message: 'required when WAREHOUSE_BACKEND is duckdb',
      });
    }
    if (config.WAREHOUSE_BACKEND === 'bigquery' && config.BIGQUERY_PROJECT_ID === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['BIGQUERY_PROJECT_ID'],
        message: 'required when WAREHOUSE_BACKEND is bigquery',
      });
    }
  });

export type Config = ConfigOf<typeof configSchema>;

/** The prefetch in effect: two batches' worth unless set. */
export function prefetchOf(config: Pick<Config, 'CONSUMER_PREFETCH' | 'BATCH_MAX_EVENTS'>): number {
  return config.CONSUMER_PREFETCH ?? config.BATCH_MAX_EVENTS * 2;
}

/** Reads and validates the configuration; throws a ConfigError listing every problem. */
export function readConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Config {
  return loadConfig(configSchema, env);
}

/** The environment of `npm run replay`: only the warehouse settings. */
export const replayConfigSchema = serviceEnv.pick({ NODE_ENV: true, LOG_LEVEL: true }).extend({
  WAREHOUSE_BACKEND: z.enum(['duckdb', 'bigquery']).default('duckdb'),
  /** Default: the local stack's warehouse (profile BAZAAR_PROFILE, default dev). */
  WAREHOUSE_PATH: z.string().trim().min(1).optional(),
  WAREHOUSE_MEMORY_LIMIT: configSchema.shape.WAREHOUSE_MEMORY_LIMIT,
  BIGQUERY_PROJECT_ID: z.string().trim().min(1).optional(),
  BIGQUERY_DATASET: configSchema.shape.BIGQUERY_DATASET,
  BIGQUERY_LOCATION: configSchema.shape.BIGQUERY_LOCATION,
  BIGQUERY_API_ENDPOINT: configSchema.shape.BIGQUERY_API_ENDPOINT,
});

export type ReplayConfig = ConfigOf<typeof replayConfigSchema>;

export function readReplayConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): ReplayConfig {
  return loadConfig(replayConfigSchema, env);
}
