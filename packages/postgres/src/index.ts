/**
 * PostgreSQL for Bazaar's services: a pool with deadlines, forward-only migrations, transactions.
 * See README.md.
 */
import type { Logger } from '@bazaar/logging';
import { runner } from 'node-pg-migrate';
import pg from 'pg';

/** Anything that runs a query: the pool, or a client inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
}

export interface PoolOptions {
  readonly connectionString: string;
  readonly logger: Logger;
  readonly max: number;
  /** `statement_timeout` of every query: no request waits on PostgreSQL for longer. */
  readonly statementTimeoutMs: number;
  /** Shown in `pg_stat_activity`: the service's name. */
  readonly applicationName: string;
}

/** The service's connection pool; every query has a deadline, and connecting has one too. */
export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max,
    connectionTimeoutMillis: 2_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMs,
    query_timeout: options.statementTimeoutMs + 1_000,
    application_name: options.applicationName,
  });
  // An idle client whose connection dies (PostgreSQL restarted) emits here; without a listener the
  // process would crash. The pool replaces the client on the next checkout.
  pool.on('error', (error) => {
    options.logger.warn({ err: error }, 'idle PostgreSQL connection lost');
  });
  return pool;
}

/**
 * Applies the pending SQL migrations of `dir` (forward only: there are no down migrations).
 * Instances starting together are serialised by node-pg-migrate's advisory lock.
 */
export async function migrate(pool: pg.Pool, logger: Logger, dir: string): Promise<string[]> {
  const client = await pool.connect();
  try {
    const applied = await runner({
      dbClient: client,
      dir,
      direction: 'up',
      migrationsTable: 'pgmigrations',
      checkOrder: true,
      singleTransaction: true,
      advisoryLockMode: 'wait',
      logger: {
        debug: (message) => logger.debug({ migration: true }, message),
        info: (message) => logger.debug({ migration: true }, message),
        warn: (message) => logger.warn({ migration: true }, message),
        error: (message) => logger.error({ migration: true }, message),
      },
    });
    const names = applied.map((migration) => migration.name);
    if (names.length > 0) logger.info({ migrations: names }, 'database migrated');
    return names;
  } finally {
    client.release();
  }
}

/** Runs `work` in a transaction on one client of the pool; rolls back if it throws. */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let isBroken = false;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {
      isBroken = true;
    });
    throw error;
  } finally {
    client.release(isBroken);
  }
}

/** The pool of a one-shot job: one connection, and minutes per statement (a migration may rewrite a table). */
export const JOB_POOL = { max: 1, statementTimeoutMs: 10 * 60_000 } as const;

export interface DatabaseJobOptions {
  /** Tries to reach the database before giving up (the Job's own retry takes over then). */
  readonly connectAttempts?: number;
  readonly connectRetryMs?: number;
}

/**
 * Runs a one-shot job on PostgreSQL, such as a Helm hook's migration: waits (bounded) for the
 * database, which may still be starting beside the Job's pod, runs `work`, then closes the pool.
 * Resolves to the process exit code (0 when `work` succeeded); it never throws.
 */
export async function runDatabaseJob(
  pool: pg.Pool,
  logger: Logger,
  what: string,
  work: () => Promise<unknown>,
  options: DatabaseJobOptions = {},
): Promise<number> {
  const attempts = options.connectAttempts ?? 60;
  const retryMs = options.connectRetryMs ?? 2_000;
  let exitCode = 0;
  try {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await pool.query('SELECT 1');
        break;
      } catch (error) {
        if (attempt >= attempts) throw error;
        logger.warn({ err: error, attempt }, 'PostgreSQL not reachable yet; retrying');
        await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    }
    await work();
  } catch (error) {
    logger.fatal({ err: error }, `${what} failed`);
    exitCode = 1;
  }
  await pool.end().catch(() => undefined);
  return exitCode;
}
