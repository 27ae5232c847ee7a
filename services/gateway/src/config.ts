import { csv, loadConfig, port, positiveInt, serviceEnv, url, type ConfigOf } from '@bazaar/config';
import { z } from 'zod';

/** The environment of the gateway: the common service variables plus its own. */
export const configSchema = serviceEnv.extend({
  PORT: port().default(8000),
  /** The declarative file (Kong's shape); relative paths are resolved from the working directory. */
  GATEWAY_CONFIG_FILE: z.string().trim().min(1).default('gateway.yaml'),
  /** Where `GET /docs` finds the OpenAPI contracts it merges. */
  GATEWAY_CONTRACTS_DIR: z.string().trim().min(1).default('../../contracts/http'),
  /** etcd of the local stack: discovery through the registry. Unset: cluster DNS (Kubernetes). */
  ETCD_URL: url({ protocols: ['http', 'https'] }).optional(),
  /** With DNS discovery, the port every service's pods listen on. */
  GATEWAY_DNS_PORT: port().default(8080),
  /**
   * With DNS discovery, the domain after each service's name (`bazaar.svc.cluster.local`): the
   * resolver asks for `<service>.<domain>` as is, since `dns.resolve4` applies no search list.
   */
  GATEWAY_DNS_DOMAIN: z
    .string()
    .trim()
    .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'a DNS domain such as bazaar.svc.cluster.local')
    .optional(),
  /** Redis for rate limiting; required when a rate-limiting plugin is configured. */
  REDIS_URL: url({ protocols: ['redis', 'rediss'] }).optional(),
  /** `${GATEWAY_JWKS_URL}` etc. in the declarative file. */
  GATEWAY_JWKS_URL: url({ protocols: ['http', 'https'] }).default(
    'http://127.0.0.1:4001/.well-known/jwks.json',
  ),
  GATEWAY_JWT_ISSUER: z.string().trim().min(1).default('bazaar-users'),
  GATEWAY_JWT_AUDIENCE: z.string().trim().min(1).default('bazaar-api'),
  /** Rate limits of gateway.yaml: per client (consumer, else address) and on login per address. */
  GATEWAY_RATE_PER_SECOND: positiveInt().default(50),
  GATEWAY_RATE_PER_MINUTE: positiveInt().default(1200),
  GATEWAY_LOGIN_RATE_PER_MINUTE: positiveInt().default(10),
  /**
   * Peers whose `X-Forwarded-For` is believed (the edge): the client address is then the rightmost
   * address in it that is not itself a trusted proxy. Per-address rate limits depend on it.
   */
  GATEWAY_TRUSTED_PROXIES: csv().default(['127.0.0.1', '::1', '::ffff:127.0.0.1']),
  /** Longest body the gateway buffers when no route sets its own limit. */
  BODY_LIMIT_BYTES: positiveInt().default(1024 * 1024),
});

export type Config = ConfigOf<typeof configSchema>;

/** The `${NAME}` variables the declarative file may use. */
export function declarativeVars(config: Config): Record<string, string> {
  return {
    GATEWAY_JWKS_URL: config.GATEWAY_JWKS_URL,
    GATEWAY_JWT_ISSUER: config.GATEWAY_JWT_ISSUER,
    GATEWAY_JWT_AUDIENCE: config.GATEWAY_JWT_AUDIENCE,
    GATEWAY_RATE_PER_SECOND: String(config.GATEWAY_RATE_PER_SECOND),
    GATEWAY_RATE_PER_MINUTE: String(config.GATEWAY_RATE_PER_MINUTE),
    GATEWAY_LOGIN_RATE_PER_MINUTE: String(config.GATEWAY_LOGIN_RATE_PER_MINUTE),
  };
}

/** Reads and validates the configuration; throws a ConfigError listing every problem. */
export function readConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Config {
  return loadConfig(configSchema, env);
}
