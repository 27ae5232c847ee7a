import pg from 'pg';
import { testStack } from '@bazaar/testing';

/** Creates (or re-creates) a database of the test cluster and returns its URL. */
export async function freshDatabase(
  name: string,
  serverUrl = testStack().postgres,
): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops a database created by {@link freshDatabase}. */
export async function dropDatabase(name: string, serverUrl = testStack().postgres): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/**
 * A pool whose idle connections may die without crashing the test process: the server restarts
 * (the stack's SIGKILL test), or a database is force-dropped while a connection is still closing.
 * A pool without an 'error' listener turns either into an uncaught exception.
 */
export function testPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on('error', () => undefined);
  return pool;
}
