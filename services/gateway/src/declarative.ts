import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

// The gateway's declarative configuration, in Kong's data model (services → routes, plugins at the
// global, service or route level, consumers; https://docs.konghq.com/gateway/latest/reference/db-less-and-declarative-config/).
// Where Kong has no field for something Bazaar needs, the extension is named in snake_case like
// Kong's own (`discovery`, `algorithm`, `passive_health`, `circuit_breaker` on a service;
// `read_timeout` on a route).

const httpMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof httpMethods)[number];
export const ALL_METHODS: readonly HttpMethod[] = httpMethods;

const name = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes');
const path = z.string().regex(/^\/[A-Za-z0-9._~/-]*$/, 'an absolute path prefix');

const corsConfig = z
  .object({
    origins: z.array(z.string()).default(['*']),
    methods: z.array(z.enum(httpMethods)).default([...httpMethods]),
    headers: z.array(z.string()).default(['authorization', 'content-type', 'idempotency-key']),
    exposed_headers: z
      .array(z.string())
      .default([
        'x-request-id',
        'retry-after',
        'ratelimit-limit',
        'ratelimit-remaining',
        'ratelimit-reset',
      ]),
    credentials: z.boolean().default(false),
    max_age: z.number().int().nonnegative().default(600),
  })
  .strict();

// Symmetric and unsigned tokens are refused outright: a JWKS only publishes public keys, and `none`
// or HS* with a public key as the secret are the classic algorithm-confusion attacks.
const asymmetricAlgorithms = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;

const jwtConfig = z
  .object({
    jwks_uri: z.url({ protocol: /^https?$/ }),
    issuer: z.string().min(1),
    audiences: z.array(z.string().min(1)).min(1),
    algorithms: z.array(z.enum(asymmetricAlgorithms)).min(1).default(['ES256']),
    /** Let requests without a token through (identity headers then absent). */
    anonymous: z.boolean().default(false),
    clock_skew_seconds: z.number().int().nonnegative().max(300).default(30),
    /** Shortest time between two JWKS fetches caused by an unknown `kid`. */
    jwks_cooldown_ms: z.number().int().nonnegative().default(30_000),
    /** How long fetched keys are used before they are fetched again. */
    jwks_cache_max_age_ms: z.number().int().positive().default(600_000),
  })
  .strict();

const rateLimitConfig = z
  .object({
    // Coerced: limits may come from `${VARIABLES}`, which substitute as strings.
    second: z.coerce.number().int().positive().optional(),
    minute: z.coerce.number().int().positive().optional(),
    hour: z.coerce.number().int().positive().optional(),
    limit_by: z.enum(['consumer', 'ip']).default('consumer'),
    policy: z.literal('redis').default('redis'),
    /** Let requests through when Redis cannot answer (a limiter outage must not be an API outage). */
    fault_tolerant: z.boolean().default(true),
  })
  .strict()
  .refine((value) => value.second ?? value.minute ?? value.hour, {
    message: 'needs at least one of second, minute, hour',
  });

const requestSizeConfig = z
  .object({
    allowed_payload_size: z.number().positive(),
    size_unit: z.enum(['bytes', 'kilobytes', 'megabytes']).default('megabytes'),
  })
  .strict();

export const pluginSchema = z.discriminatedUnion('name', [
  z
    .object({
      name: z.literal('cors'),
      enabled: z.boolean().default(true),
      config: corsConfig.default(corsConfig.parse({})),
    })
    .strict(),
  z
    .object({ name: z.literal('jwt'), enabled: z.boolean().default(true), config: jwtConfig })
    .strict(),
  z
    .object({
      name: z.literal('rate-limiting'),
      enabled: z.boolean().default(true),
      config: rateLimitConfig,
    })
    .strict(),
  z
    .object({
      name: z.literal('request-size-limiting'),
      enabled: z.boolean().default(true),
      config: requestSizeConfig,
    })
    .strict(),
]);
export type PluginSpec = z.output<typeof pluginSchema>;
export type PluginName = PluginSpec['name'];
export type PluginConfig<N extends PluginName> = Extract<PluginSpec, { name: N }>['config'];

const routeSchema = z
  .object({
    name,
    paths: z.array(path).min(1),
    methods: z.array(z.enum(httpMethods)).min(1).optional(),
    strip_path: z.boolean().default(true),
    /** The route's deadline for the whole upstream exchange, retries included (ms). */
    read_timeout: z.number().int().positive().optional(),
    plugins: z.array(pluginSchema).default([]),
  })
  .strict();

const serviceSchema = z
  .object({
    name,
    /** The registry name of the upstream service (etcd key / DNS name), `name` by default. */
    host: z.string().min(1).optional(),
    /** Fixed upstream base URLs instead of discovery (benchmarks, external APIs). */
    targets: z.array(z.url({ protocol: /^https?$/ })).optional(),
    path: path.default('/'),
    /** Deadline of one route's upstream exchange unless the route sets its own (ms). */
    read_timeout: z.number().int().positive().default(5000),
    connect_timeout: z.number().int().positive().default(2000),
    /** Extra attempts, on other instances, for idempotent requests (and refused connections). */
    retries: z.number().int().min(0).max(5).default(2),
    algorithm: z.enum(['round-robin', 'least-connections']).default('round-robin'),
    passive_health: z
      .object({
        /** Consecutive failures (connect error, timeout, 502/503/504) that eject an instance. */
        failures: z.number().int().positive().default(3),
        /** How long an ejected instance gets no traffic. */
        cooldown_ms: z.number().int().positive().default(10_000),
      })
      .strict()
      .default({ failures: 3, cooldown_ms: 10_000 }),
    circuit_breaker: z
      .object({
        /** Consecutive failed exchanges (after retries) that open the breaker. */
        failures: z.number().int().positive().default(5),
        /** How long it stays open before one trial request (half-open). */
        open_ms: z.number().int().positive().default(10_000),
      })
      .strict()
      .default({ failures: 5, open_ms: 10_000 }),
    routes: z.array(routeSchema).default([]),
    plugins: z.array(pluginSchema).default([]),
  })
  .strict();

const consumerSchema = z
  .object({
    username: z.string().min(1),
    /** Matched against the token's `sub` (users) or `client_id`/`azp` (service clients). */
    custom_id: z.string().min(1),
    tags: z.array(z.string()).default([]),
  })
  .strict();

export const declarativeSchema = z
  .object({
    _format_version: z.literal('3.0'),
    services: z.array(serviceSchema).default([]),
    plugins: z.array(pluginSchema).default([]),
    consumers: z.array(consumerSchema).default([]),
  })
  .strict()
  .superRefine((value, ctx) => {
    const seen = new Set<string>();
    for (const [index, service] of value.services.entries()) {
      for (const [routeIndex, route] of service.routes.entries()) {
        if (seen.has(route.name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['services', index, 'routes', routeIndex, 'name'],
            message: `duplicate route name "${route.name}"`,
          });
        }
        seen.add(route.name);
      }
    }
  });

export type DeclarativeConfig = z.output<typeof declarativeSchema>;
export type ServiceSpec = DeclarativeConfig['services'][number];
export type RouteSpec = ServiceSpec['routes'][number];
export type ConsumerSpec = DeclarativeConfig['consumers'][number];

/** Why a declarative file was refused, every problem listed. */
export class DeclarativeConfigError extends Error {
  override readonly name = 'DeclarativeConfigError';
}

/** Replaces `${NAME}` in every string of a parsed document; collects unknown names. */
function substitute(
  value: unknown,
  vars: Readonly<Record<string, string>>,
  missing: Set<string>,
): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Z0-9_]+)\}/g, (_match, key: string) => {
      const replacement = vars[key];
      if (replacement === undefined) missing.add(key);
      return replacement ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((item) => substitute(item, vars, missing));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, member]) => [key, substitute(member, vars, missing)]),
    );
  }
  return value;
}

/**
 * Parses and validates a declarative document. `${NAME}` in a string value is replaced by
 * `vars[NAME]` (URLs that differ per environment); an unknown name is an error.
 */
export function parseDeclarative(
  text: string,
  vars: Readonly<Record<string, string>> = {},
): DeclarativeConfig {
  const missing = new Set<string>();
  const document = substitute(parseYaml(text), vars, missing);
  if (missing.size > 0) {
    throw new DeclarativeConfigError(`unknown variables: ${[...missing].join(', ')}`);
  }
  const result = declarativeSchema.safeParse(document);
  if (!result.success) {
    const lines = result.error.issues.map(
      (issue) => `  ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`,
    );
    throw new DeclarativeConfigError(`invalid gateway configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** Reads a declarative file (see {@link parseDeclarative}). */
export function loadDeclarative(
  file: string,
  vars: Readonly<Record<string, string>> = {},
): DeclarativeConfig {
  return parseDeclarative(readFileSync(file, 'utf8'), vars);
}

/**
 * The plugins in force on a route: Kong's precedence, the most specific level wins per plugin name
 * (route over service over global). Disabled plugins are dropped after precedence, so a route can
 * switch a global plugin off.
 */
export function effectivePlugins(
  config: DeclarativeConfig,
  service: ServiceSpec,
  route: RouteSpec,
): PluginSpec[] {
  const byName = new Map<PluginName, PluginSpec>();
  for (const plugin of [...config.plugins, ...service.plugins, ...route.plugins]) {
    byName.set(plugin.name, plugin);
  }
  return [...byName.values()].filter((plugin) => plugin.enabled);
}
