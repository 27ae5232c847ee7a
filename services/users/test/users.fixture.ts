import { randomBytes } from 'node:crypto';
import { createLogger } from '@bazaar/logging';
import { startTelemetry } from '@bazaar/telemetry';
import { testStack } from '@bazaar/testing';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { createUserRepository, type UserRepository } from '../src/accounts/user.repository';
import { buildApp, type UsersApp } from '../src/app';
import { readConfig, type Config } from '../src/config';
import { createPool, migrate } from '../src/database';
import { createRedis } from '../src/redis';

/** A database of the test stack's PostgreSQL that only this test file uses; dropped at the end. */
export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

async function withAdminClient<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates `users_test_<random>` in the cluster `adminUrl` points at (the test stack's by default). */
export async function createTestDatabase(
  adminUrl = testStack().postgres,
  urlOf: (name: string) => string = testStack().postgresDatabase,
): Promise<TestDatabase> {
  const name = `users_test_${randomBytes(5).toString('hex')}`;
  await withAdminClient(adminUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  return {
    name,
    url: urlOf(name),
    drop: () =>
      withAdminClient(adminUrl, (client) =>
        client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
      ).then(() => undefined),
  };
}

export interface UsersOptions {
  /** Environment variables on top of the test defaults. */
  readonly env?: Readonly<Record<string, string>>;
  readonly now?: () => Date;
  /** Wraps the real repository, e.g. to count the queries that reach PostgreSQL. */
  readonly wrapRepository?: (repository: UserRepository) => UserRepository;
  readonly redisUrl?: string;
}

/** A users app listening on a free loopback port, with its own pool and Redis client. */
export interface RunningUsers {
  readonly url: string;
  readonly config: Config;
  readonly service: UsersApp;
  readonly pool: pg.Pool;
  readonly redis: Redis;
  close(): Promise<void>;
}

/** The Redis key prefix of one test run, so runs never see each other's keys. */
export function testKeyPrefix(): string {
  return `users-test-${randomBytes(4).toString('hex')}:`;
}

/**
 * Starts the users app in this process the way `main.ts` composes it (migrations, signing keys,
 * local admin), against `databaseUrl` and the test stack's Redis.
 */
export async function startUsers(
  databaseUrl: string,
  options: UsersOptions = {},
): Promise<RunningUsers> {
  const config = readConfig({
    NODE_ENV: 'test',
    PORT: '0',
    LOG_LEVEL: 'silent',
    DATABASE_URL: databaseUrl,
    REDIS_URL: options.redisUrl ?? testStack().redis,
    RABBITMQ_URL: testStack().rabbitmq,
    REDIS_KEY_PREFIX: testKeyPrefix(),
    ...options.env,
  });
  const logger = createLogger({ service: 'users', level: config.LOG_LEVEL });
  const telemetry = startTelemetry({ serviceName: 'users' });
  const pool = createPool({
    connectionString: config.DATABASE_URL,
    logger,
    max: config.DATABASE_POOL_SIZE,
    statementTimeoutMs: config.REQUEST_TIMEOUT_MS,
  });
  const redis = createRedis({
    url: config.REDIS_URL,
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
    logger,
  });
  const repository = createUserRepository(pool);
  const service = buildApp({
    config,
    logger,
    telemetry,
    pool,
    redis,
    ...(options.now === undefined ? {} : { now: options.now }),
    userRepository: options.wrapRepository?.(repository) ?? repository,
  });
  try {
    await migrate(pool, logger);
    await service.start();
    await service.app.listen({ host: '127.0.0.1', port: 0 });
  } catch (error) {
    await service.app.close();
    service.stop();
    redis.disconnect();
    await pool.end();
    throw error;
  }
  const address = service.app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    config,
    service,
    pool,
    redis,
    async close() {
      await service.app.close();
      service.stop();
      redis.disconnect();
      await pool.end();
    },
  };
}

export {
  call,
  PASSWORD,
  registerAndLogin,
  uniqueEmail,
  type Reply,
  type TokenPairBody,
} from '@bazaar/testing';
