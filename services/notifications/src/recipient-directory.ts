import type { HttpClient } from '@bazaar/http-client';
import type pg from 'pg';
import { RecipientUnknownError } from './errors';
import { findRecipient, upsertRecipient, type Recipient } from './notification.repository';

/** Where to write to a user. Throws RecipientUnknownError when nobody knows the user. */
export interface RecipientDirectory {
  lookup(userId: string): Promise<Recipient>;
}

/** The users service's internal API, as notifications uses it (client credentials + one read). */
export interface UsersApi {
  findUser(userId: string): Promise<Recipient | undefined>;
}

export interface UsersApiOptions {
  readonly client: HttpClient;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly now?: () => number;
}

/**
 * `POST /internal/v1/tokens` (audience `users`) for a service token, kept until shortly before it
 * expires, then `GET /internal/v1/users/{id}`. A 401 drops the cached token (keys rotated) once.
 */
export function createUsersApi(options: UsersApiOptions): UsersApi {
  const { client, now = Date.now } = options;
  let token: { value: string; expiresAt: number } | undefined;

  async function serviceToken(): Promise<string> {
    if (token !== undefined && token.expiresAt > now()) return token.value;
    const response = await client.request({
      method: 'POST',
      path: '/internal/v1/tokens',
      body: {
        clientId: options.clientId,
        clientSecret: options.clientSecret,
        audience: 'users',
      },
    });
    const body = response.body as { accessToken?: unknown; expiresIn?: unknown } | undefined;
    if (response.status !== 200 || typeof body?.accessToken !== 'string') {
      throw new Error(`users refused a service token (${response.status})`);
    }
    const ttlMs = typeof body.expiresIn === 'number' ? body.expiresIn * 1000 : 60_000;
    // Renewed at 80 % of its life, so a token never expires on the way.
    token = { value: body.accessToken, expiresAt: now() + ttlMs * 0.8 };
    return token.value;
  }

  async function fetchUser(userId: string, isRetry: boolean): Promise<Recipient | undefined> {
    const response = await client.request({
      method: 'GET',
      path: `/internal/v1/users/${encodeURIComponent(userId)}`,
      headers: { authorization: `Bearer ${await serviceToken()}` },
    });
    if (response.status === 404) return undefined;
    if (response.status === 401 && !isRetry) {
      token = undefined;
      return fetchUser(userId, true);
    }
    const body = response.body as { email?: unknown; name?: unknown } | undefined;
    if (response.status !== 200 || typeof body?.email !== 'string') {
      throw new Error(`users answered ${response.status} for a user lookup`);
    }
    return { userId, email: body.email, name: typeof body.name === 'string' ? body.name : '' };
  }

  return { findUser: (userId) => fetchUser(userId, false) };
}

/**
 * The local projection of `user.registered.v1` first; a user it does not know yet (the order event
 * overtook the registration event, or the user registered before this service existed) is looked
 * up through the users API and remembered. Without a users API, an unknown user is an error that
 * the dispatcher retries — the registration event usually arrives meanwhile.
 */
export function createRecipientDirectory(pool: pg.Pool, users?: UsersApi): RecipientDirectory {
  return {
    async lookup(userId) {
      const known = await findRecipient(pool, userId);
      if (known !== undefined) return known;
      if (users === undefined) {
        throw new Error('the address of this user is not known yet (no users API configured)');
      }
      const found = await users.findUser(userId);
      if (found === undefined)
        throw new RecipientUnknownError('the users service does not know this user');
      await upsertRecipient(pool, found, 'users-api');
      return found;
    },
  };
}
