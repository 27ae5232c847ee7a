import { fileURLToPath } from 'node:url';
import type { Logger } from '@bazaar/logging';
import {
  createPool as createPostgresPool,
  migrate as runMigrations,
  type PoolOptions as PostgresPoolOptions,
} from '@bazaar/postgres';
import type pg from 'pg';

export { inTransaction, type Queryable } from '@bazaar/postgres';

// `src/database.ts` and the bundle `dist/main.mjs` are both one level below the service folder.
const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

export type PoolOptions = Omit<PostgresPoolOptions, 'applicationName'>;

/** The service's connection pool; every query has a deadline, and connecting has one too. */
export function createPool(options: PoolOptions): pg.Pool {
  return createPostgresPool({ ...options, applicationName: 'users' });
}

/** Applies the pending migrations of `migrations/`. */
export function migrate(pool: pg.Pool, logger: Logger): Promise<string[]> {
  return runMigrations(pool, logger, MIGRATIONS_DIR);
}
