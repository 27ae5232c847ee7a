import { createEvent, type UserRegisteredV1 } from '@bazaar/contracts';
import type { Logger } from '@bazaar/logging';
import { injectContext } from '@bazaar/telemetry';
import type pg from 'pg';
import { inTransaction } from '../database';
import { emailTaken, invalidFields, userNotFound } from '../errors';
import type { EventOutbox } from '../outbox';
import type { PasswordHasher } from './password-hasher';
import type { ProfileCache } from './profile-cache';
import {
  newUserId,
  normaliseEmail,
  normaliseName,
  profileOf,
  validateRegistration,
  type Profile,
  type User,
} from './user';
import type { NewUser, UserRepository } from './user.repository';

export interface UserService {
  /** Creates a customer account and its `user.registered.v1` event, in one transaction. */
  register(input: { email: string; password: string; name: string }): Promise<Profile>;
  /** The profile, from the cache when it has it. */
  profile(id: string): Promise<Profile>;
  /** Changes what a user may change (the name), then drops the cached profile. */
  updateProfile(id: string, changes: { name?: string }): Promise<Profile>;
  /**
   * The account these credentials open, or `undefined`. Takes as long for an unknown email as for
   * a wrong password, and rehashes the password when the hashing parameters have changed.
   */
  verifyCredentials(email: string, password: string): Promise<User | undefined>;
  /** Makes sure the local admin exists with this password (idempotent; run at start). */
  ensureAdmin(email: string, password: string): Promise<void>;
}

export interface UserServiceDeps {
  readonly pool: pg.Pool;
  readonly users: UserRepository;
  readonly hasher: PasswordHasher;
  readonly cache: ProfileCache;
  readonly outbox: EventOutbox;
  readonly logger: Logger;
  readonly now?: () => Date;
}

const ADMIN_NAME = 'Administrator';

function activeTraceContext(): { traceparent?: string; tracestate?: string } {
  const headers: Record<string, string> = {};
  injectContext(headers);
  return {
    ...(headers.traceparent === undefined ? {} : { traceparent: headers.traceparent }),
    ...(headers.tracestate === undefined ? {} : { tracestate: headers.tracestate }),
  };
}

/** The `user.registered.v1` event (contracts/events/user.registered.v1.schema.json). */
export function userRegisteredEvent(user: User): UserRegisteredV1 {
  return createEvent('user.registered.v1', {
    source: '/users',
    subject: user.id,
    time: user.createdAt,
    ...activeTraceContext(),
    data: {
      userId: user.id,
      email: user.email,
      name: user.name,
      registeredAt: user.createdAt.toISOString(),
    },
  });
}

export function createUserService(deps: UserServiceDeps): UserService {
  const { pool, users, hasher, cache, outbox, logger, now = () => new Date() } = deps;
  // Verified against when the email is unknown, so both failures cost one Argon2 verification.
  let decoyHash: Promise<string> | undefined;

  async function create(user: NewUser): Promise<User> {
    return inTransaction(pool, async (client) => {
      const created = await users.insert(client, user);
      if (created === 'email_taken') throw emailTaken();
      await outbox.enqueue(client, userRegisteredEvent(created));
      return created;
    });
  }

  const loadProfile = async (id: string) => {
    const user = await users.findById(id);
    return user === undefined ? undefined : profileOf(user);
  };

  async function profile(id: string): Promise<Profile> {
    const found = await cache.read(id, loadProfile);
    if (found === undefined) throw userNotFound();
    return found;
  }

  return {
    async register(input) {
      const checked = validateRegistration(input);
      if ('issues' in checked) throw invalidFields(checked.issues);
      const { registration } = checked;
      // Cheap early answer for the common duplicate; the unique constraint is the real guard.
      if ((await users.findByEmail(registration.email)) !== undefined) throw emailTaken();
      const user = await create({
        id: newUserId(now()),
        email: registration.email,
        name: registration.name,
        passwordHash: await hasher.hash(registration.password),
        role: 'customer',
        emailVerified: false,
        createdAt: now(),
      });
      return profileOf(user);
    },

    profile,

    async updateProfile(id, changes) {
      if (changes.name === undefined) return profile(id);
      const name = normaliseName(changes.name);
      if ('problem' in name) throw invalidFields([{ path: '/body/name', message: name.problem }]);
      const user = await users.updateName(id, name.name, now());
      if (user === undefined) throw userNotFound();
      await cache.invalidate(id, user.version);
      return profileOf(user);
    },

    async verifyCredentials(rawEmail, password) {
      const email = normaliseEmail(rawEmail);
      const user = email === undefined ? undefined : await users.findByEmail(email);
      if (user === undefined) {
        decoyHash ??= hasher.hash('decoy password that never matches anything');
        await hasher.verify(await decoyHash, password);
        return undefined;
      }
      if (!(await hasher.verify(user.passwordHash, password))) return undefined;
      if (hasher.needsRehash(user.passwordHash)) {
        await users.replacePasswordHash(user.id, user.passwordHash, await hasher.hash(password));
        logger.info({ userId: user.id }, 'password rehashed with the current parameters');
      }
      return user;
    },

    async ensureAdmin(rawEmail, password) {
      const email = normaliseEmail(rawEmail);
      if (email === undefined) throw new Error('ADMIN_EMAIL is not a valid email address');
      const existing = await users.findByEmail(email);
      if (existing === undefined) {
        const admin = await create({
          id: newUserId(now()),
          email,
          name: ADMIN_NAME,
          passwordHash: await hasher.hash(password),
          role: 'admin',
          emailVerified: true,
          createdAt: now(),
        }).catch(async (error: unknown) => {
          // Another instance created it a moment ago.
          const raced = await users.findByEmail(email);
          if (raced === undefined) throw error;
          return raced;
        });
        logger.info({ userId: admin.id }, 'local admin created');
        return;
      }
      const isCurrent =
        existing.role === 'admin' &&
        !hasher.needsRehash(existing.passwordHash) &&
        (await hasher.verify(existing.passwordHash, password));
      if (isCurrent) return;
      const admin = await users.promoteToAdmin(existing.id, await hasher.hash(password), now());
      if (admin !== undefined) await cache.invalidate(admin.id, admin.version);
      logger.info({ userId: existing.id }, 'local admin updated from ADMIN_EMAIL/ADMIN_PASSWORD');
    },
  };
}
