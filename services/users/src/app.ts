import type { Logger } from '@bazaar/logging';
import { createApp } from '@bazaar/service-kit';
import type { Telemetry } from '@bazaar/telemetry';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { createPasswordHasher } from './accounts/password-hasher';
import { createProfileCache } from './accounts/profile-cache';
import { createUserRepository, type UserRepository } from './accounts/user.repository';
import { registerUserRoutes } from './accounts/user.routes';
import { createUserService, type UserService } from './accounts/user.service';
import { createAccessTokens, type AccessTokens } from './auth/access-tokens';
import { registerAuthRoutes } from './auth/auth.routes';
import { createAuthService, type AuthService } from './auth/auth.service';
import { createLoginThrottle } from './auth/login-throttle';
import { createSessionRepository } from './auth/session.repository';
import { serviceClientsOf, type Config } from './config';
import { createKeyRing, type KeyRing } from './keys/key-ring';
import { registerKeyRoutes } from './keys/key.routes';
import { createSigningKeyRepository } from './keys/signing-key.repository';
import { createPgOutbox, type EventOutbox } from './outbox';

/** What the users app is built from; `main.ts` passes the real ones, tests their own. */
export interface AppDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly telemetry: Pick<Telemetry, 'tracer' | 'meter' | 'renderMetrics'>;
  readonly pool: pg.Pool;
  readonly redis: Redis;
  readonly now?: () => Date;
  /** Replaces the user repository (tests count the queries that reach PostgreSQL). */
  readonly userRepository?: UserRepository;
  readonly outbox?: EventOutbox;
}

/** The app and the parts a caller may need to start, stop or drive directly. */
export interface UsersApp {
  readonly app: FastifyInstance;
  readonly keyRing: KeyRing;
  readonly users: UserService;
  readonly auth: AuthService;
  readonly tokens: AccessTokens;
  /** The I/O that must happen before serving: signing keys, the local admin. */
  start(): Promise<void>;
  stop(): void;
}

/** Builds the users app from its dependencies. No I/O happens until `start()`. */
export function buildApp(deps: AppDeps): UsersApp {
  const { config, logger, telemetry, pool, redis, now = () => new Date() } = deps;

  const keyRing = createKeyRing({
    repository: createSigningKeyRepository(pool),
    keyEncryptionKey: config.USERS_KEY_ENCRYPTION_KEY,
    longestTokenLifetimeMs: Math.max(config.ACCESS_TOKEN_TTL_MS, config.SERVICE_TOKEN_TTL_MS),
    clockToleranceMs: config.JWT_CLOCK_TOLERANCE_MS,
    reloadIntervalMs: config.SIGNING_KEYS_RELOAD_MS,
    logger,
    now,
  });
  const tokens = createAccessTokens({
    keyRing,
    issuer: config.JWT_ISSUER,
    userAudience: config.JWT_AUDIENCE,
    userTokenTtlMs: config.ACCESS_TOKEN_TTL_MS,
    serviceTokenTtlMs: config.SERVICE_TOKEN_TTL_MS,
    clockToleranceMs: config.JWT_CLOCK_TOLERANCE_MS,
    now,
  });
  const users = createUserService({
    pool,
    users: deps.userRepository ?? createUserRepository(pool),
    hasher: createPasswordHasher({
      memoryKiB: config.ARGON2_MEMORY_KIB,
      timeCost: config.ARGON2_TIME_COST,
      parallelism: config.ARGON2_PARALLELISM,
    }),
    cache: createProfileCache({
      redis,
      keyPrefix: config.REDIS_KEY_PREFIX,
      ttlMs: config.PROFILE_CACHE_TTL_MS,
      lockMs: config.PROFILE_CACHE_LOCK_MS,
      logger,
      meter: telemetry.meter,
    }),
    outbox: deps.outbox ?? createPgOutbox(),
    logger,
    now,
  });
  const auth = createAuthService({
    users,
    sessions: createSessionRepository(pool),
    tokens,
    throttle: createLoginThrottle({
      redis,
      keyPrefix: config.REDIS_KEY_PREFIX,
      maxFailures: config.LOGIN_MAX_FAILURES,
      windowMs: config.LOGIN_FAILURE_WINDOW_MS,
      logger,
    }),
    refreshTokenTtlMs: config.REFRESH_TOKEN_TTL_MS,
    serviceClients: serviceClientsOf(config),
    now,
  });

  // Redis is a cache: its outage only costs latency, so readiness depends on PostgreSQL alone.
  const app = createApp({
    config,
    logger,
    telemetry,
    readinessChecks: [{ name: 'postgres', check: () => pool.query('SELECT 1') }],
  });
  registerUserRoutes(app, { users, tokens });
  registerAuthRoutes(app, { auth, trustedProxies: new Set(config.TRUSTED_PROXIES) });
  registerKeyRoutes(app, { keyRing, tokens });

  return {
    app,
    keyRing,
    users,
    auth,
    tokens,
    async start() {
      await keyRing.start();
      if (config.ADMIN_EMAIL !== undefined && config.ADMIN_PASSWORD !== undefined) {
        await users.ensureAdmin(config.ADMIN_EMAIL, config.ADMIN_PASSWORD);
      }
    },
    stop: () => keyRing.stop(),
  };
}
