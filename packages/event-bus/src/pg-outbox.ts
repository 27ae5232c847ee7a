import pg from 'pg';
import type { Logger } from '@bazaar/logging';
import { reconnectDelayMs } from './broker-connection';
import { sleep } from './deadline';
import {
  defaultValidator,
  eventIssues,
  invalidEventError,
  type BusEvent,
  type EventValidator,
} from './event';
import type { EventBus } from './event-bus';
import { traceHeaders } from './trace-headers';
import { Wakeup } from './wakeup';

/** Anything that runs a query: a `pg.PoolClient` inside the caller's transaction, a `pg.Client`. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,40}$/;

function checkedTable(table: string): string {
  if (!IDENTIFIER.test(table)) {
    throw new TypeError(`outbox table "${table}" must be a lower-case SQL identifier`);
  }
  return table;
}

/**
 * The DDL of an outbox table (idempotent), for the owning service's migrations. A statement trigger
 * notifies channel `<table>` on insert, so relays wake at commit time instead of waiting for a poll.
 * `event_id` is `text` because event ids are the contracts' to define (UUIDs today).
 *
 * @param table - default `outbox`
 */
export function outboxSchemaSql(table = 'outbox'): string {
  const t = checkedTable(table);
  return `
CREATE TABLE IF NOT EXISTS ${t} (
  id bigserial PRIMARY KEY,
  event_id text NOT NULL UNIQUE,
  type text NOT NULL,
  payload jsonb NOT NULL,
  headers jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
CREATE INDEX IF NOT EXISTS ${t}_unpublished_idx ON ${t} (id) WHERE published_at IS NULL;
CREATE OR REPLACE FUNCTION ${t}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('${t}', '');
  RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER ${t}_notify AFTER INSERT ON ${t}
  FOR EACH STATEMENT EXECUTE FUNCTION ${t}_notify();
`;
}

/** Options of {@link enqueueEvents}. */
export interface EnqueueOptions {
  /**
   * Schema check at write time, so an invalid event fails the business transaction (and the request)
   * instead of sitting in the outbox. Default: the contracts' `validateEvent` (the bus's default).
   */
  readonly validate?: EventValidator;
  /** Default `outbox`. */
  readonly table?: string;
}

/**
 * Writes events to the outbox with the caller's client, i.e. inside the caller's transaction: they
 * become visible to the relay exactly when the business change commits. The active trace context is
 * stored with them, so consumers continue the trace of the request that caused them.
 *
 * @throws `AppError('VALIDATION_FAILED')` when an event is invalid (nothing is written)
 */
export async function enqueueEvents(
  client: Queryable,
  events: readonly BusEvent[],
  options: EnqueueOptions = {},
): Promise<void> {
  if (events.length === 0) return;
  for (const event of events) {
    const issues = eventIssues(event, options.validate ?? defaultValidator);
    if (issues.length > 0) throw invalidEventError(event, issues);
  }
  await client.query(
    `INSERT INTO ${checkedTable(options.table ?? 'outbox')} (event_id, type, payload, headers)
     SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[])`,
    [
      events.map((event) => event.id),
      events.map((event) => event.type),
      events.map((event) => JSON.stringify(event)),
      // The trace to continue: the active one, or the one the envelope names.
      events.map((event) => JSON.stringify(traceHeaders({ event }))),
    ],
  );
}

/** Options of {@link startPgOutboxRelay}. */
export interface PgOutboxRelayOptions {
  /** The owning service's pool; the relay also opens one extra connection of its own for LISTEN. */
  readonly pool: pg.Pool;
  readonly bus: Pick<EventBus, 'publishBatch'>;
  readonly logger: Logger;
  /** Default `outbox`. */
  readonly table?: string;
  /** Rows claimed per transaction. Default 500. */
  readonly batchSize?: number;
  /** Workers claiming batches side by side (each holds one pool connection while busy). Default 2. */
  readonly concurrency?: number;
  /** Polling fallback when no notification arrives. Default 1000 ms. */
  readonly pollIntervalMs?: number;
  /** Deadline of one batch's publish (connection wait + confirms). Default: the bus's. */
  readonly publishTimeoutMs?: number;
  /** `statement_timeout` of the relay's queries. Default 5000 ms. */
  readonly statementTimeoutMs?: number;
}

/** A running relay. */
export interface PgOutboxRelay {
  /** Look for rows now (e.g. right after a commit, if the service does not rely on NOTIFY). */
  wake(): void;
  /** Rows this relay marked published so far. */
  readonly publishedCount: number;
  /** Stops claiming; resolves when the batches in flight are finished (committed or rolled back). */
  stop(): Promise<void>;
}

interface OutboxRow {
  id: string;
  event_id: string;
  type: string;
  /** The envelope as JSON text: it was validated when enqueued, so it is sent without parsing. */
  body: string;
  headers: Record<string, string> | null;
}

/**
 * Publishes outbox rows with confirms and marks them published. Each worker repeats, in one short
 * transaction: claim the oldest unpublished rows `FOR UPDATE SKIP LOCKED` (setting `published_at` in the
 * same statement), publish them as one batch, await the confirms, unmark the rows that were not
 * confirmed, commit — or roll back when none was. Any number of relays may run
 * on the same table: a claimed row is invisible to the others until its transaction ends, and a row
 * whose transaction committed late (a lower id than rows already published) is still unpublished and
 * found by the next claim — no "last id" is tracked, so nothing is skipped. If the process dies mid-batch,
 * PostgreSQL rolls the claim back; what was already sent is sent again (at least once).
 */
export function startPgOutboxRelay(options: PgOutboxRelayOptions): PgOutboxRelay {
  const table = checkedTable(options.table ?? 'outbox');
  const batchSize = options.batchSize ?? 500;
  const concurrency = options.concurrency ?? 2;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const statementTimeoutMs = options.statementTimeoutMs ?? 5000;
  const { pool, bus, logger } = options;
  const stopping = new AbortController();
  const wakeup = new Wakeup();
  let publishedCount = 0;

  // Claiming and marking are one statement: the UPDATE's row locks are the claim (other relays skip the
  // rows), and the mark only becomes visible if the transaction commits — after the confirms. Rows whose
  // publish failed are unmarked again before the commit. One heap write per row instead of two.
  const claimSql = `UPDATE ${table} SET published_at = now()
    WHERE id IN (SELECT id FROM ${table} WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING id, event_id, type, payload::text AS body, headers`;
  const unmarkSql = `UPDATE ${table} SET published_at = NULL WHERE id = ANY($1::bigint[])`;

  /** One claim–publish–mark transaction; returns how many rows it claimed and how many failed. */
  async function relayBatch(): Promise<{ claimed: number; failed: number }> {
    const client = await pool.connect();
    let isBroken = false;
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL statement_timeout = ${Math.floor(statementTimeoutMs)}`);
      const { rows: claimed } = await client.query<OutboxRow>(claimSql, [batchSize]);
      if (claimed.length === 0) {
        await client.query('COMMIT');
        return { claimed: 0, failed: 0 };
      }
      // RETURNING has no order; publish oldest first (ids are bigint strings).
      const rows = claimed.sort((a, b) => a.id.length - b.id.length || (a.id < b.id ? -1 : 1));
      const results = await bus.publishBatch(
        rows.map((row) => ({
          encoded: { id: row.event_id, type: row.type, body: row.body },
          headers: row.headers ?? {},
        })),
        options.publishTimeoutMs === undefined ? {} : { timeoutMs: options.publishTimeoutMs },
      );
      const unconfirmed: string[] = [];
      let firstFailure: unknown;
      rows.forEach((row, index) => {
        const result = results[index];
        if (result?.status !== 'fulfilled') {
          unconfirmed.push(row.id);
          firstFailure ??= result?.reason;
        }
      });
      if (unconfirmed.length === rows.length) {
        await client.query('ROLLBACK');
      } else {
        if (unconfirmed.length > 0) await client.query(unmarkSql, [unconfirmed]);
        await client.query('COMMIT');
      }
      const failed = unconfirmed.length;
      publishedCount += rows.length - failed;
      if (failed > 0) {
        logger.warn(
          { err: firstFailure, table, failed, published: rows.length - failed },
          'outbox rows not published; they stay in the outbox',
        );
      }
      return { claimed: rows.length, failed };
    } catch (error) {
      isBroken = true;
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release(isBroken);
    }
  }

  async function work(): Promise<void> {
    let failures = 0;
    while (!stopping.signal.aborted) {
      try {
        const { claimed, failed } = await relayBatch();
        if (failed > 0) {
          failures += 1;
        } else {
          failures = 0;
          // A full batch suggests more rows are waiting: claim again at once.
          if (claimed === batchSize) continue;
          await wakeup.wait(pollIntervalMs, stopping.signal);
          continue;
        }
      } catch (error) {
        failures += 1;
        if (!stopping.signal.aborted)
          logger.warn({ err: error, table }, 'outbox relay batch failed');
      }
      await sleep(Math.max(100, reconnectDelayMs(failures, 250, 5000)), stopping.signal);
    }
  }

  async function listen(): Promise<void> {
    let failures = 0;
    while (!stopping.signal.aborted) {
      const client = new pg.Client(pool.options);
      const ended = new Promise<unknown>((resolve) => {
        client.on('error', resolve);
        client.once('end', () => resolve(new Error('LISTEN connection ended')));
      });
      client.on('notification', () => wakeup.wake());
      const onStop = () => void client.end().catch(() => undefined);
      try {
        await client.connect();
        await client.query(`LISTEN ${table}`);
        failures = 0;
        // Rows may have arrived while not listening.
        wakeup.wake();
        stopping.signal.addEventListener('abort', onStop, { once: true });
        const error = await ended;
        if (!stopping.signal.aborted)
          logger.warn({ err: error, table }, 'outbox LISTEN connection lost');
      } catch (error) {
        failures += 1;
        if (!stopping.signal.aborted) logger.warn({ err: error, table }, 'outbox LISTEN failed');
      } finally {
        stopping.signal.removeEventListener('abort', onStop);
        await client.end().catch(() => undefined);
      }
      await sleep(Math.max(250, reconnectDelayMs(failures, 500, 10_000)), stopping.signal);
    }
  }

  const running = Promise.all([...Array.from({ length: concurrency }, () => work()), listen()]);

  return {
    wake: () => wakeup.wake(),
    get publishedCount() {
      return publishedCount;
    },
    async stop() {
      stopping.abort();
      await running;
    },
  };
}

/** Deletes rows published more than `olderThanMs` ago (run it now and then; they only serve audits). */
export async function prunePublishedOutbox(
  client: Queryable,
  olderThanMs: number,
  table = 'outbox',
): Promise<number> {
  const result = await client.query(
    `DELETE FROM ${checkedTable(table)} WHERE published_at < now() - make_interval(secs => $1)`,
    [olderThanMs / 1000],
  );
  return result.rowCount ?? 0;
}
