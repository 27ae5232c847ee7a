import { z } from 'zod';

// Every helper reads a raw environment string and turns it into a typed value. Messages name what
// was expected and echo the offending input, except where the input may carry a secret (URLs can
// hold passwords), so a failed start is explained without leaking credentials into logs.

/**
 * A schema for an environment string that `parse` turns into a value, or `undefined` when the
 * string is not acceptable; the issue then reads `expected <expected>, got "<raw>"`.
 */
function envString<T>(expected: string, parse: (raw: string) => T | undefined, echo = true) {
  return z.string().transform((raw, ctx): T => {
    const value = parse(raw.trim());
    if (value === undefined) {
      ctx.issues.push({
        code: 'custom',
        message: echo ? `expected ${expected}, got ${JSON.stringify(raw)}` : `expected ${expected}`,
        input: raw,
      });
      return z.NEVER;
    }
    return value;
  });
}

/** A TCP port, 0–65535 (0 lets the OS choose, which tests use). */
export function port() {
  return envString('a number (a port from 0 to 65535)', (raw) => {
    if (!/^\d{1,5}$/.test(raw)) return undefined;
    const value = Number(raw);
    return value <= 65_535 ? value : undefined;
  });
}

/** Options of {@link url}. */
export interface UrlOptions {
  /** Accepted schemes without the colon, e.g. `['http', 'https']`; any scheme when omitted. */
  readonly protocols?: readonly string[];
}

/**
 * An absolute, hierarchical URL (`scheme://…`), kept as the string given (trimmed). `localhost:4318`
 * is refused although WHATWG parses it (as scheme `localhost:`). The input is never echoed in
 * messages because connection URLs may hold credentials.
 */
export function url(options: UrlOptions = {}) {
  const { protocols } = options;
  const expected =
    protocols === undefined
      ? 'an absolute URL (scheme://…)'
      : `an absolute URL (scheme://…) with scheme ${protocols.map((p) => `${p}:`).join(' or ')}`;
  return envString(
    expected,
    (raw) => {
      if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) || !URL.canParse(raw)) return undefined;
      const scheme = new URL(raw).protocol.slice(0, -1);
      return protocols === undefined || protocols.includes(scheme) ? raw : undefined;
    },
    false,
  );
}

const truthy = new Set(['true', '1']);
const falsy = new Set(['false', '0']);

/** A boolean written `true`/`false`/`1`/`0` (any case). */
export function bool() {
  return envString('true, false, 1 or 0', (raw) => {
    const value = raw.toLowerCase();
    if (truthy.has(value)) return true;
    return falsy.has(value) ? false : undefined;
  });
}

const durationUnits: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds in a duration written `250ms`, `5s`, `1.5s`, `2m`, `1h` or a bare number of ms. */
export function parseDurationMs(raw: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i.exec(raw.trim());
  if (match === null) return undefined;
  const [, amount = '', unit = 'ms'] = match;
  const value = Math.round(Number(amount) * (durationUnits[unit.toLowerCase()] ?? Number.NaN));
  return Number.isSafeInteger(value) ? value : undefined;
}

/** A duration in milliseconds, written `250ms`, `5s`, `2m`, `1h` or a bare number of ms. */
export function durationMs() {
  return envString('a duration such as 250ms, 5s, 2m or a number of ms', parseDurationMs);
}

/** A whole number greater than zero, e.g. a pool size or a byte count. */
export function positiveInt() {
  return envString('a positive integer', (raw) => {
    if (!/^\d+$/.test(raw)) return undefined;
    const value = Number(raw);
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  });
}

/** A comma-separated list; items are trimmed and empty items dropped (`"a, b,,c"` → `[a, b, c]`). */
export function csv() {
  return z.string().transform((raw) =>
    raw
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== ''),
  );
}

/** The log levels of pino, plus `silent`. */
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A log level: one of {@link logLevels}. */
export type LogLevel = (typeof logLevels)[number];

/** A log level, any case: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`. */
export function logLevel() {
  return envString(`one of ${logLevels.join(', ')}`, (raw) => {
    const value = raw.toLowerCase();
    return (logLevels as readonly string[]).includes(value) ? (value as LogLevel) : undefined;
  });
}

/** The deployment modes. */
export const nodeEnvs = ['development', 'test', 'production'] as const;

/** A deployment mode: one of {@link nodeEnvs}. */
export type NodeEnv = (typeof nodeEnvs)[number];

/** A deployment mode: `development`, `test` or `production`. */
export function nodeEnv() {
  return envString(`one of ${nodeEnvs.join(', ')}`, (raw) =>
    (nodeEnvs as readonly string[]).includes(raw) ? (raw as NodeEnv) : undefined,
  );
}

/**
 * The variables every service reads. A service extends it with its own:
 *
 * @example
 * ```ts
 * export const schema = serviceEnv.extend({ PORT: port().default(4004), DATABASE_URL: url() });
 * ```
 */
export const serviceEnv = z.object({
  NODE_ENV: nodeEnv().default('development'),
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  PORT: port(),
  LOG_LEVEL: logLevel().default('info'),
  SERVICE_INSTANCE_ID: z.string().trim().min(1).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: url({ protocols: ['http', 'https'] }).optional(),
  /** Elasticsearch base URL; when set, every log line is also shipped there (bulk API, batched). */
  LOG_ELASTICSEARCH_URL: url({ protocols: ['http', 'https'] }).optional(),
  SHUTDOWN_TIMEOUT_MS: durationMs().default(10_000),
  REQUEST_TIMEOUT_MS: durationMs().default(10_000),
  BODY_LIMIT_BYTES: positiveInt().default(1024 * 1024),
});

/** The configuration every service has, as parsed from {@link serviceEnv}. */
export type ServiceConfig = z.output<typeof serviceEnv>;

/**
 * The variables of a service that verifies users' access tokens itself (zero trust: the gateway's
 * word is not enough): where the users service publishes its keys, and the `iss` and `aud` to expect.
 * Spread into the service's schema: `serviceEnv.extend({ ...accessTokenEnv, … })`.
 */
export const accessTokenEnv = {
  JWKS_URL: url({ protocols: ['http', 'https'] }),
  JWT_ISSUER: z.string().trim().min(1).default('bazaar-users'),
  JWT_AUDIENCE: z.string().trim().min(1).default('bazaar-api'),
};
