// The embedded warehouse: one DuckDB file, written by one process (DuckDB's own file lock enforces it).
// The writer connection appends batches; the reader connection answers queries concurrently (MVCC).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { BazaarEvent } from '@bazaar/contracts';
import type { Logger } from '@bazaar/logging';
import {
  addAmount,
  moneyList,
  seriesFromRows,
  summaryFromRows,
  type RowReader,
} from './analytics-query';
import { warehouseLocked } from './errors';
import { emptyFactRows, addFactsOf, idHashOf, uniqueById, type FactRows } from './warehouse-event';
import type {
  AppendResult,
  CancellationCount,
  Conversion,
  Interval,
  RebuildResult,
  TimeRange,
  TopProduct,
  Warehouse,
} from './warehouse';

// Timestamps are TIMESTAMP in UTC (no time-zone extension needed); facts use the business time of
// the event (placedAt, capturedAt, …), raw events the envelope's `time`.
export const schemaSql = `
CREATE TABLE IF NOT EXISTS raw_events (
  event_id    VARCHAR   NOT NULL,
  id_hash     UBIGINT   NOT NULL,
  type        VARCHAR   NOT NULL,
  source      VARCHAR   NOT NULL,
  subject     VARCHAR   NOT NULL,
  occurred_at TIMESTAMP NOT NULL,
  ingested_at TIMESTAMP NOT NULL,
  envelope    JSON      NOT NULL
);
CREATE TABLE IF NOT EXISTS order_facts (
  event_id      VARCHAR   NOT NULL,
  order_id      VARCHAR   NOT NULL,
  user_id       VARCHAR   NOT NULL,
  kind          VARCHAR   NOT NULL,
  amount        BIGINT    NOT NULL,
  currency      VARCHAR   NOT NULL,
  cancel_reason VARCHAR,
  occurred_at   TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS order_item_facts (
  event_id     VARCHAR   NOT NULL,
  order_id     VARCHAR   NOT NULL,
  product_id   VARCHAR   NOT NULL,
  product_name VARCHAR   NOT NULL,
  quantity     BIGINT    NOT NULL,
  unit_amount  BIGINT    NOT NULL,
  currency     VARCHAR   NOT NULL,
  occurred_at  TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS payment_facts (
  event_id     VARCHAR   NOT NULL,
  payment_id   VARCHAR   NOT NULL,
  order_id     VARCHAR   NOT NULL,
  user_id      VARCHAR   NOT NULL,
  kind         VARCHAR   NOT NULL,
  amount       BIGINT    NOT NULL,
  currency     VARCHAR   NOT NULL,
  failure_code VARCHAR,
  occurred_at  TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS user_facts (
  event_id    VARCHAR   NOT NULL,
  user_id     VARCHAR   NOT NULL,
  occurred_at TIMESTAMP NOT NULL
);
`;

/** Staging tables (per connection, never persisted) mirror the targets with text timestamps. */
const stagingSql = `
CREATE TEMP TABLE IF NOT EXISTS stage_keys (id_hash UBIGINT);
CREATE TEMP TABLE IF NOT EXISTS stage_raw (
  event_id VARCHAR, id_hash UBIGINT, type VARCHAR, source VARCHAR, subject VARCHAR,
  occurred_at VARCHAR, ingested_at VARCHAR, envelope VARCHAR);
CREATE TEMP TABLE IF NOT EXISTS stage_orders (
  event_id VARCHAR, order_id VARCHAR, user_id VARCHAR, kind VARCHAR, amount BIGINT,
  currency VARCHAR, cancel_reason VARCHAR, occurred_at VARCHAR);
CREATE TEMP TABLE IF NOT EXISTS stage_order_items (
  event_id VARCHAR, order_id VARCHAR, product_id VARCHAR, product_name VARCHAR, quantity BIGINT,
  unit_amount BIGINT, currency VARCHAR, occurred_at VARCHAR);
CREATE TEMP TABLE IF NOT EXISTS stage_payments (
  event_id VARCHAR, payment_id VARCHAR, order_id VARCHAR, user_id VARCHAR, kind VARCHAR,
  amount BIGINT, currency VARCHAR, failure_code VARCHAR, occurred_at VARCHAR);
CREATE TEMP TABLE IF NOT EXISTS stage_users (event_id VARCHAR, user_id VARCHAR, occurred_at VARCHAR);
`;

const factTables = ['order_facts', 'order_item_facts', 'payment_facts', 'user_facts'] as const;

const moveFactsSql = `
INSERT INTO order_facts SELECT event_id, order_id, user_id, kind, amount, currency, cancel_reason,
  occurred_at::TIMESTAMP FROM stage_orders;
INSERT INTO order_item_facts SELECT event_id, order_id, product_id, product_name, quantity,
  unit_amount, currency, occurred_at::TIMESTAMP FROM stage_order_items;
INSERT INTO payment_facts SELECT event_id, payment_id, order_id, user_id, kind, amount, currency,
  failure_code, occurred_at::TIMESTAMP FROM stage_payments;
INSERT INTO user_facts SELECT event_id, user_id, occurred_at::TIMESTAMP FROM stage_users;
`;

const moveRawSql = `
INSERT INTO raw_events SELECT event_id, id_hash, type, source, subject, occurred_at::TIMESTAMP,
  ingested_at::TIMESTAMP, envelope::JSON FROM stage_raw;
`;

type Cell = string | number | bigint | null;

/** ISO 8601 in UTC → DuckDB TIMESTAMP text (the `Z` dropped: the column is UTC by convention). */
function timestampText(iso: string): string {
  return iso.endsWith('Z') ? iso.slice(0, -1) : iso;
}

async function fill(
  connection: DuckDBConnection,
  table: string,
  rows: readonly (readonly Cell[])[],
): Promise<void> {
  await connection.run(`DELETE FROM temp.main.${table}`);
  if (rows.length === 0) return;
  const appender = await connection.createAppender(table, 'main', 'temp');
  try {
    for (const row of rows) {
      for (const cell of row) {
        if (cell === null) appender.appendNull();
        else if (typeof cell === 'string') appender.appendVarchar(cell);
        else if (typeof cell === 'bigint') appender.appendUBigInt(cell);
        else appender.appendBigInt(BigInt(cell));
      }
      appender.endRow();
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
}

async function stageFacts(connection: DuckDBConnection, rows: FactRows): Promise<void> {
  await fill(
    connection,
    'stage_orders',
    rows.orders.map((f) => [
      f.eventId,
      f.orderId,
      f.userId,
      f.kind,
      f.amount,
      f.currency,
      f.cancelReason,
      timestampText(f.occurredAt),
    ]),
  );
  await fill(
    connection,
    'stage_order_items',
    rows.orderItems.map((f) => [
      f.eventId,
      f.orderId,
      f.productId,
      f.productName,
      f.quantity,
      f.unitAmount,
      f.currency,
      timestampText(f.occurredAt),
    ]),
  );
  await fill(
    connection,
    'stage_payments',
    rows.payments.map((f) => [
      f.eventId,
      f.paymentId,
      f.orderId,
      f.userId,
      f.kind,
      f.amount,
      f.currency,
      f.failureCode,
      timestampText(f.occurredAt),
    ]),
  );
  await fill(
    connection,
    'stage_users',
    rows.users.map((f) => [f.eventId, f.userId, timestampText(f.occurredAt)]),
  );
}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return value.toString();
  throw new TypeError(`expected a text column, got ${typeof value}`);
}

function toNumber(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'number') return value;
  return Number(value);
}

const rowReader: RowReader = { toNumber, instant: text };

function rangeParams(range: TimeRange): Record<string, string> {
  return {
    from: timestampText(range.from.toISOString()),
    to: timestampText(range.to.toISOString()),
  };
}

const inRange = 'occurred_at >= $from::TIMESTAMP AND occurred_at < $to::TIMESTAMP';

export interface DuckDbWarehouseOptions {
  readonly path: string;
  readonly logger: Logger;
  /** e.g. `1GB`; DuckDB's default when unset. */
  readonly memoryLimit?: string | undefined;
  readonly now?: () => Date;
}

/** Serializes writes: the dedupe check and the insert must not interleave with another batch. */
function createMutex(): <T>(work: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(work: () => Promise<T>) => {
    const run = tail.then(work, work);
    tail = run.catch(() => undefined);
    return run;
  };
}

/**
 * Opens (creating it and its directory if needed) the DuckDB warehouse. Rejects with
 * `SERVICE_UNAVAILABLE` / `warehouse_locked` if another process has the file open.
 */
export async function openDuckDbWarehouse(options: DuckDbWarehouseOptions): Promise<Warehouse> {
  const { logger, now = () => new Date() } = options;
  await mkdir(path.dirname(path.resolve(options.path)), { recursive: true });
  let instance: DuckDBInstance;
  try {
    instance = await DuckDBInstance.create(options.path, {
      ...(options.memoryLimit === undefined ? {} : { memory_limit: options.memoryLimit }),
    });
  } catch (error) {
    if (error instanceof Error && /Could not set lock on file/i.test(error.message)) {
      throw warehouseLocked(options.path, error);
    }
    throw error;
  }
  const writer = await instance.connect();
  const reader = await instance.connect();
  const exclusive = createMutex();
  let isClosed = false;

  async function inTransaction<T>(work: () => Promise<T>): Promise<T> {
    await writer.run('BEGIN TRANSACTION');
    try {
      const result = await work();
      await writer.run('COMMIT');
      return result;
    } catch (error) {
      await writer.run('ROLLBACK').catch((rollbackError: unknown) => {
        logger.warn({ err: rollbackError }, 'warehouse rollback failed');
      });
      throw error;
    }
  }

  /** The ids of `hashes`' events already stored: a scan of the 8-byte key column, then exact ids. */
  async function storedIds(hashes: readonly bigint[]): Promise<Set<string>> {
    await fill(
      writer,
      'stage_keys',
      hashes.map((hash) => [hash]),
    );
    const candidates = await writer.runAndReadAll(
      'SELECT DISTINCT s.id_hash FROM stage_keys s SEMI JOIN raw_events r ON r.id_hash = s.id_hash',
    );
    const matched = candidates.getRowsJS().map((row) => row[0] as bigint);
    if (matched.length === 0) return new Set();
    // Rare (redeliveries, replays): only now read ids, for the few rows whose key matched, so that a
    // 64-bit collision between two different ids can never drop an event.
    const exact = await writer.runAndReadAll(
      `SELECT event_id FROM raw_events WHERE id_hash IN (${matched.map(String).join(',')})`,
    );
    return new Set(exact.getRowsJS().map((row) => row[0] as string));
  }

  async function readRows(sql: string, params: Record<string, string | number> = {}) {
    const result = await reader.runAndReadAll(sql, params);
    return result.getRowObjectsJS();
  }

  const warehouse: Warehouse = {
    backend: 'duckdb',

    async open() {
      await writer.run(schemaSql);
      await writer.run(stagingSql);
    },

    append(events: readonly BazaarEvent[]): Promise<AppendResult> {
      return exclusive(async () => {
        const unique = uniqueById(events);
        const stored = await storedIds(unique.map((event) => idHashOf(event.id)));
        const fresh = unique.filter((event) => !stored.has(event.id));
        const duplicates = events.length - fresh.length;
        if (fresh.length === 0) return { inserted: 0, duplicates };
        const rows = emptyFactRows();
        for (const event of fresh) addFactsOf(rows, event);
        const ingestedAt = timestampText(now().toISOString());
        await fill(
          writer,
          'stage_raw',
          rows.raw.map((row, index) => [
            row.eventId,
            row.idHash,
            row.type,
            row.source,
            row.subject,
            timestampText(row.occurredAt),
            ingestedAt,
            JSON.stringify(fresh[index]),
          ]),
        );
        await stageFacts(writer, rows);
        // One transaction for the raw rows and their facts: COMMIT is durable (DuckDB's WAL is
        // fsynced), and only then does the caller acknowledge the messages.
        await inTransaction(async () => {
          await writer.run(moveRawSql);
          await writer.run(moveFactsSql);
        });
        return { inserted: fresh.length, duplicates };
      });
    },

    async summary(range) {
      const params = rangeParams(range);
      const [events] = await readRows(
        `SELECT count(*) AS n FROM raw_events WHERE ${inRange}`,
        params,
      );
      const [orders] = await readRows(
        `SELECT count(*) FILTER (WHERE kind = 'placed') AS placed,
                count(*) FILTER (WHERE kind = 'confirmed') AS confirmed,
                count(*) FILTER (WHERE kind = 'cancelled') AS cancelled
         FROM order_facts WHERE ${inRange}`,
        params,
      );
      const payments = await readRows(
        `SELECT currency,
                CAST(coalesce(sum(amount) FILTER (WHERE kind = 'captured'), 0) AS BIGINT) AS captured,
                CAST(coalesce(sum(amount) FILTER (WHERE kind = 'refunded'), 0) AS BIGINT) AS refunded,
                count(*) FILTER (WHERE kind = 'failed') AS failed
         FROM payment_facts WHERE ${inRange} GROUP BY currency`,
        params,
      );
      return summaryFromRows(rowReader, events, orders, payments);
    },

    async ordersOverTime(range, interval: Interval) {
      const params = { ...rangeParams(range), interval };
      const bucket = `strftime(date_trunc($interval, occurred_at), '%Y-%m-%dT%H:%M:%S.000Z')`;
      const orders = await readRows(
        `SELECT ${bucket} AS bucket,
                count(*) FILTER (WHERE kind = 'placed') AS placed,
                count(*) FILTER (WHERE kind = 'confirmed') AS confirmed,
                count(*) FILTER (WHERE kind = 'cancelled') AS cancelled
         FROM order_facts WHERE ${inRange} GROUP BY 1`,
        params,
      );
      const payments = await readRows(
        `SELECT ${bucket} AS bucket, currency,
                CAST(sum(CASE kind WHEN 'captured' THEN amount ELSE -amount END) AS BIGINT) AS net
         FROM payment_facts WHERE ${inRange} AND kind IN ('captured', 'refunded') GROUP BY 1, 2`,
        params,
      );
      return seriesFromRows(rowReader, range, interval, orders, payments);
    },

    async conversion(range) {
      const [row] = await readRows(
        `SELECT count(*) AS placed,
                count(*) FILTER (WHERE order_id IN (
                  SELECT order_id FROM order_facts WHERE kind = 'confirmed')) AS confirmed,
                count(*) FILTER (WHERE order_id IN (
                  SELECT order_id FROM order_facts WHERE kind = 'cancelled')) AS cancelled
         FROM (SELECT DISTINCT order_id FROM order_facts WHERE kind = 'placed' AND ${inRange})`,
        rangeParams(range),
      );
      return {
        placed: toNumber(row?.placed),
        confirmed: toNumber(row?.confirmed),
        cancelled: toNumber(row?.cancelled),
      } satisfies Conversion;
    },

    async cancellations(range) {
      const rows = await readRows(
        `SELECT cancel_reason AS reason, currency, count(*) AS n,
                CAST(sum(amount) AS BIGINT) AS amount
         FROM order_facts WHERE kind = 'cancelled' AND ${inRange} GROUP BY 1, 2`,
        rangeParams(range),
      );
      const byReason = new Map<string, { count: number; amount: Map<string, number> }>();
      for (const row of rows) {
        const reason = text(row.reason);
        const entry = byReason.get(reason) ?? { count: 0, amount: new Map<string, number>() };
        entry.count += toNumber(row.n);
        addAmount(entry.amount, text(row.currency), toNumber(row.amount));
        byReason.set(reason, entry);
      }
      return [...byReason.entries()]
        .map(([reason, entry]): CancellationCount => ({
          reason,
          count: entry.count,
          amount: moneyList(entry.amount),
        }))
        .sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1));
    },

    async topProducts(range, limit) {
      const rows = await readRows(
        `SELECT product_id, arg_max(product_name, occurred_at) AS name, currency,
                CAST(sum(quantity) AS BIGINT) AS quantity, count(DISTINCT order_id) AS orders,
                CAST(sum(quantity * unit_amount) AS BIGINT) AS revenue
         FROM order_item_facts
         WHERE ${inRange}
           AND order_id IN (SELECT order_id FROM order_facts WHERE kind = 'confirmed')
         GROUP BY product_id, currency
         ORDER BY quantity DESC, product_id, currency
         LIMIT $limit`,
        { ...rangeParams(range), limit },
      );
      return rows.map((row): TopProduct => ({
        productId: text(row.product_id),
        name: text(row.name),
        quantity: toNumber(row.quantity),
        orders: toNumber(row.orders),
        revenue: { amount: toNumber(row.revenue), currency: text(row.currency) },
      }));
    },

    rebuildFacts(): Promise<RebuildResult> {
      return exclusive(async () => {
        let events = 0;
        await inTransaction(async () => {
          for (const table of factTables) await writer.run(`DELETE FROM ${table}`);
          for await (const page of warehouse.readEvents(20_000)) {
            const rows = emptyFactRows();
            for (const event of page) addFactsOf(rows, event);
            await stageFacts(writer, rows);
            await writer.run(moveFactsSql);
            events += page.length;
          }
        });
        await writer.run('CHECKPOINT');
        return { events };
      });
    },

    async *readEvents(pageSize = 10_000) {
      // The reader sees the committed raw events; rebuildFacts writes on the other connection.
      const result = await reader.stream(
        'SELECT envelope::VARCHAR AS envelope FROM raw_events ORDER BY occurred_at, event_id',
      );
      let page: BazaarEvent[] = [];
      for await (const rows of result.yieldRowsJs()) {
        for (const row of rows) {
          page.push(JSON.parse(row[0] as string) as BazaarEvent);
          if (page.length >= pageSize) {
            yield page;
            page = [];
          }
        }
      }
      if (page.length > 0) yield page;
    },

    async ping() {
      await reader.run('SELECT 1');
    },

    async close() {
      if (isClosed) return;
      isClosed = true;
      await exclusive(async () => {
        // A checkpoint folds the WAL into the file, so the next start does not replay it.
        await writer.run('CHECKPOINT').catch((error: unknown) => {
          logger.warn({ err: error }, 'warehouse checkpoint at close failed');
        });
        reader.closeSync();
        writer.closeSync();
        instance.closeSync();
      });
    },
  };
  return warehouse;
}
