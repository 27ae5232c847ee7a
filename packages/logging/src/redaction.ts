/** What the value of a secret-named key is replaced with. */
export const REDACTED = '[REDACTED]';

/** Keys whose values are always secrets, whatever object they sit in (compared ignoring case). */
export const secretKeys: readonly string[] = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'clientSecret',
  'client_secret',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'idToken',
  'id_token',
  'apiKey',
  'api_key',
  'x-api-key',
  'privateKey',
  'private_key',
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'cardNumber',
  'pan',
  'cvv',
  'cvc',
];

/** How many objects deep {@link redactSecretKeys} looks; deeper values are written as they are. */
export const SECRET_KEY_DEPTH = 8;

const defaultKeys: ReadonlySet<string> = new Set(secretKeys.map((key) => key.toLowerCase()));

function isPlainObject(value: object): value is Record<string, unknown> {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * A copy of `value` in which every secret-named key (at any depth up to {@link SECRET_KEY_DEPTH},
 * in plain objects and arrays) holds {@link REDACTED}. Only the branches that change are copied;
 * when nothing is secret, `value` itself is returned. The input is never mutated.
 *
 * @param keys - lower-cased key names to redact; {@link secretKeys} by default.
 */
export function redactSecretKeys<T>(
  value: T,
  keys: ReadonlySet<string> = defaultKeys,
  depth = 0,
): T {
  if (typeof value !== 'object' || value === null || depth > SECRET_KEY_DEPTH) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let index = 0; index < value.length; index += 1) {
      const item: unknown = value[index];
      const redacted = redactSecretKeys(item, keys, depth + 1);
      if (redacted !== item) {
        copy ??= [...(value as unknown[])];
        copy[index] = redacted;
      }
    }
    return (copy ?? value) as T;
  }
  if (!isPlainObject(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value)) {
    const redacted =
      item !== undefined && keys.has(key.toLowerCase())
        ? REDACTED
        : redactSecretKeys(item, keys, depth + 1);
    if (redacted !== item) {
      copy ??= { ...value };
      copy[key] = redacted;
    }
  }
  return (copy ?? value) as T;
}
