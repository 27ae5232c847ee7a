import { z } from 'zod';

/** Options of {@link secret}. */
export interface SecretOptions {
  /** Minimum length in production. Default 32. */
  readonly minLength?: number;
  /**
   * The value used when the variable is unset outside production, so a local start needs no setup.
   * In production it is refused like any other known default.
   */
  readonly localDefault?: string;
  /** More values that must never be used in production, besides the built-in list. */
  readonly knownDefaults?: readonly string[];
}

/** Values that are never secrets, whatever the variable. */
export const builtInDefaults: readonly string[] = [
  'changeme',
  'change-me',
  'change_me',
  'secret',
  'password',
  'dev',
  'development',
  'local',
  'test',
  'example',
];

// Whether the parse running now is for production. `loadConfig` sets it around a synchronous
// `safeParse`, so a secret schema can apply the production policy while reporting its issues
// together with every other problem of the same environment.
let isParsingForProduction = false;

/** Runs `parse` with the production secret policy on or off. Internal to `loadConfig`. */
export function withSecretPolicy<T>(isProduction: boolean, parse: () => T): T {
  const previous = isParsingForProduction;
  isParsingForProduction = isProduction;
  try {
    return parse();
  } finally {
    isParsingForProduction = previous;
  }
}

/**
 * A secret string (signing key, password, API key). Outside production any non-empty value, or the
 * `localDefault` when unset, is accepted. Under `NODE_ENV=production`, `loadConfig` refuses a value
 * that equals a known local default or is shorter than `minLength`. The value is never echoed in
 * messages.
 *
 * @example
 * ```ts
 * JWT_SIGNING_KEY: secret({ localDefault: 'local-only-signing-key-do-not-use' }),
 * ```
 */
export function secret(options: SecretOptions = {}) {
  const { minLength = 32, localDefault, knownDefaults = [] } = options;
  const refused = new Set([...builtInDefaults, ...knownDefaults]);
  if (localDefault !== undefined) refused.add(localDefault);
  const schema = z
    .string()
    .min(1, { error: 'must not be empty' })
    .check((ctx) => {
      if (!isParsingForProduction) return;
      if (refused.has(ctx.value)) {
        ctx.issues.push({
          code: 'custom',
          message: 'a known local default is refused in production; set a real secret',
          input: ctx.value,
        });
      } else if (ctx.value.length < minLength) {
        ctx.issues.push({
          code: 'custom',
          message: `must be at least ${minLength} characters in production`,
          input: ctx.value,
        });
      }
    });
  // `prefault` (not `default`) sends the local default through the checks above, so production
  // refuses it like a value that was set explicitly.
  return localDefault === undefined ? schema : schema.prefault(localDefault);
}
