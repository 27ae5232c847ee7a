import type pg from 'pg';

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,40}$/;

/**
 * The DDL of the table that records which events a consumer has already applied (idempotent), for the
 * consuming service's migrations. It lives in the consumer's own database, beside its effects.
 *
 * @param table - default `processed_events`
 */
export function processedEventsSchemaSql(table = 'processed_events'): string {
  if (!IDENTIFIER.test(table)) throw new TypeError(`"${table}" is not a lower-case SQL identifier`);
  return `
CREATE TABLE IF NOT EXISTS ${table} (
  consumer text NOT NULL,
  event_id text NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
`;
}

/** What {@link handleOnce} did. */
export type HandleOnceResult = 'processed' | 'duplicate';

/** Options of {@link handleOnce}. */
export interface HandleOnceOptions {
  /** Default `processed_events`. */
  readonly table?: string;
}

/**
 * Applies an event's effect at most once per (consumer, event id): in one transaction, records the
 * event id (`INSERT … ON CONFLICT DO NOTHING`) and runs `effect` with the transaction's client. If the
 * id was already recorded, nothing runs and the result is `'duplicate'` — acknowledge the message.
 * Two deliveries racing on the same id serialize on the primary key: the second waits for the first
 * to commit and then sees the duplicate (or proceeds if the first rolled back). If `effect` throws,
 * everything rolls back and the error propagates (the bus retries the message).
 *
 * @param consumer - the consumer group name (one service may consume an event in several groups)
 */
export async function handleOnce(
  pool: pg.Pool,
  consumer: string,
  eventId: string,
  effect: (tx: pg.PoolClient) => Promise<void>,
  options: HandleOnceOptions = {},
): Promise<HandleOnceResult> {
  const table = options.table ?? 'processed_events';
  if (!IDENTIFIER.test(table)) throw new TypeError(`"${table}" is not a lower-case SQL identifier`);
  const client = await pool.connect();
  let isBroken = false;
  try {
    await client.query('BEGIN');
    const inserted = await client.query(
      `INSERT INTO ${table} (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
      [consumer, eventId],
    );
    if (inserted.rowCount === 0) {
      await client.query('ROLLBACK');
      return 'duplicate';
    }
    await effect(client);
    await client.query('COMMIT');
    return 'processed';
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {
      isBroken = true;
    });
    throw error;
  } finally {
    client.release(isBroken);
  }
}
