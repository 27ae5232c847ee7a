import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from './config-error';
import { withSecretPolicy } from './secret';

/** Where configuration comes from: a record of environment variables. */
export type EnvSource = Readonly<Record<string, string | undefined>>;

/** `T` with every nested property and array read-only, as `loadConfig` returns it. */
export type DeepReadonly<T> = T extends (infer Item)[]
  ? readonly DeepReadonly<Item>[]
  : T extends Date | RegExp | URL
    ? T
    : T extends object
      ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
      : T;

/** The configuration a schema describes, as `loadConfig` returns it. */
export type ConfigOf<S extends z.ZodObject> = DeepReadonly<z.output<S>>;

// Messages for issues the helpers do not word themselves (plain zod schemas in a service's shape).
function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.input === undefined) return 'required';
  if (issue.code === 'invalid_value') {
    const values = issue.values.map((value) => JSON.stringify(value)).join(', ');
    return `expected one of ${values}, got ${JSON.stringify(issue.input)}`;
  }
  if (issue.code === 'too_small' && issue.origin === 'string') {
    return Number(issue.minimum) <= 1
      ? 'must not be empty'
      : `must be at least ${String(issue.minimum)} characters`;
  }
  return undefined;
}

function pathOf(issue: z.core.$ZodIssue): string {
  return issue.path.length === 0 ? '(environment)' : issue.path.map(String).join('.');
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

/**
 * Parses and validates configuration from the environment with a zod object schema, and returns it
 * typed and deeply frozen. Empty variables count as unset, so defaults apply to `PORT=`. Under
 * `NODE_ENV=production`, `secret()` fields refuse known local defaults and short values.
 *
 * @param schema - the service's schema, usually `serviceEnv.extend({...})`.
 * @param env - the variables to read; `process.env` by default.
 * @throws {@link ConfigError} listing every problem at once.
 *
 * @example
 * ```ts
 * const config = loadConfig(serviceEnv.extend({ PORT: port().default(4004) }));
 * config.PORT; // number
 * ```
 */
export function loadConfig<S extends z.ZodObject>(
  schema: S,
  env: EnvSource = process.env,
): ConfigOf<S> {
  const present: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value.trim() !== '') present[name] = value;
  }
  const isProduction = present.NODE_ENV?.trim() === 'production';
  const result = withSecretPolicy(isProduction, () =>
    schema.safeParse(present, { error: describeIssue }),
  );
  if (!result.success) {
    const problems: ConfigProblem[] = result.error.issues.map((issue) => ({
      path: pathOf(issue),
      message: issue.message,
    }));
    throw new ConfigError(problems);
  }
  return deepFreeze(result.data) as ConfigOf<S>;
}
