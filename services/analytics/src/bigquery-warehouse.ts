// The BigQuery adapter: the same tables and columns as the DuckDB warehouse, written with streaming
// inserts (tabledata.insertAll, insertId = event id). BigQuery has no transaction across streaming
// inserts, so exactness comes from checking, per table, which event ids it already holds (the
// streaming buffer is queryable at once) and inserting only the others — one writer at a time, the
// analytics consumer; insertId additionally dedupes a retried insertAll call inside BigQuery.
import { BigQuery, type TableField } from '@google-cloud/bigquery';
import type { BazaarEvent } from '@bazaar/contracts';
import type { Logger } from '@bazaar/logging';
import {
  addAmount,
  moneyList,
  seriesFromRows,
  summaryFromRows,
  type RowReader,
} from './analytics-query';
import { emptyFactRows, addFactsOf, uniqueById, type FactRows } from './warehouse-event';
import type {
  AppendResult,
  CancellationCount,
  Interval,
  RebuildResult,
  TimeRange,
  TopProduct,
  Warehouse,
} from './warehouse';

const s = (name: string, mode: 'REQUIRED' | 'NULLABLE' = 'REQUIRED'): TableField => ({
  name,
  type: 'STRING',
  mode,
});
const int = (name: string): TableField => ({ name, type: 'INT64', mode: 'REQUIRED' });
const ts = (name: string): TableField => ({ name, type: 'TIMESTAMP', mode: 'REQUIRED' });

/** Table → columns; the DuckDB schema's twin (`envelope` is JSON text, `id_hash` is DuckDB's only). */
export const bigQuerySchema = {
  raw_events: [
    s('event_id'),
    s('type'),
    s('source'),
    s('subject'),
    ts('occurred_at'),
    ts('ingested_at'),
    s('envelope'),
  ],
  order_facts: [
    s('event_id'),
    s('order_id'),
    s('user_id'),
    s('kind'),
    int('amount'),
    s('currency'),
    s('cancel_reason', 'NULLABLE'),
    ts('occurred_at'),
  ],
  order_item_facts: [
    s('event_id'),
    s('order_id'),
    s('product_id'),
    s('product_name'),
    int('quantity'),
    int('unit_amount'),
    s('currency'),
    ts('occurred_at'),
  ],
  payment_facts: [
    s('event_id'),
    s('payment_id'),
    s('order_id'),
    s('user_id'),
    s('kind'),
    int('amount'),
    s('currency'),
    s('failure_code', 'NULLABLE'),
    ts('occurred_at'),
  ],
  user_facts: [s('event_id'), s('user_id'), ts('occurred_at')],
} satisfies Record<string, TableField[]>;

type TableName = keyof typeof bigQuerySchema;
type Row = Record<string, string | number | null>;

export interface BigQueryWarehouseOptions {
  readonly projectId: string;
  readonly dataset: string;
  readonly location: string;
  /** The BigQuery emulator, e.g. `http://127.0.0.1:9050`; Google's API when unset. */
  readonly apiEndpoint?: string | undefined;
  readonly logger: Logger;
  readonly now?: () => Date;
}

function toNumber(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'object' && 'value' in value) return Number(value.value);
  return Number(value);
}

function timestampOf(value: unknown): string {
  if (typeof value === 'object' && value !== null && 'value' in value) {
    return new Date(String(value.value)).toISOString();
  }
  return new Date(String(value)).toISOString();
}

/** The rows per table of `events`, with the event id of each row (the dedupe key). */
function tableRows(
  rows: FactRows,
  envelopes: ReadonlyMap<string, BazaarEvent>,
  ingestedAt: string,
): Record<TableName, Row[]> {
  return {
    raw_events: rows.raw.map((row) => ({
      event_id: row.eventId,
      type: row.type,
      source: row.source,
      subject: row.subject,
      occurred_at: row.occurredAt,
      ingested_at: ingestedAt,
      envelope: JSON.stringify(envelopes.get(row.eventId)),
    })),
    order_facts: rows.orders.map((f) => ({
      event_id: f.eventId,
      order_id: f.orderId,
      user_id: f.userId,
      kind: f.kind,
      amount: f.amount,
      currency: f.currency,
      cancel_reason: f.cancelReason,
      occurred_at: f.occurredAt,
    })),
    order_item_facts: rows.orderItems.map((f) => ({
      event_id: f.eventId,
      order_id: f.orderId,
      product_id: f.productId,
      product_name: f.productName,
      quantity: f.quantity,
      unit_amount: f.unitAmount,
      currency: f.currency,
      occurred_at: f.occurredAt,
    })),
    payment_facts: rows.payments.map((f) => ({
      event_id: f.eventId,
      payment_id: f.paymentId,
      order_id: f.orderId,
      user_id: f.userId,
      kind: f.kind,
      amount: f.amount,
      currency: f.currency,
      failure_code: f.failureCode,
      occurred_at: f.occurredAt,
    })),
    user_facts: rows.users.map((f) => ({
      event_id: f.eventId,
      user_id: f.userId,
      occurred_at: f.occurredAt,
    })),
  };
}

const tableNames = Object.keys(bigQuerySchema) as TableName[];
const factTableNames = tableNames.filter((name) => name !== 'raw_events');

export function openBigQueryWarehouse(options: BigQueryWarehouseOptions): Warehouse {
  const { dataset: datasetId, location, logger, now = () => new Date() } = options;
  const client = new BigQuery({
    projectId: options.projectId,
    location,
    ...(options.apiEndpoint === undefined ? {} : { apiEndpoint: options.apiEndpoint }),
  });
  const dataset = client.dataset(datasetId);
  const table = (name: TableName) => `\`${options.projectId}.${datasetId}.${name}\``;
  let tail: Promise<unknown> = Promise.resolve();

  function exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = tail.then(work, work);
    tail = run.catch(() => undefined);
    return run;
  }

  async function query(sql: string, params: Record<string, unknown> = {}) {
    const [rows] = await client.query({ query: sql, params, location });
    return rows as Record<string, unknown>[];
  }

  const rowReader: RowReader = { toNumber, instant: timestampOf };

  function rangeParams(range: TimeRange) {
    return {
      from: BigQuery.timestamp(range.from),
      to: BigQuery.timestamp(range.to),
    };
  }
  const inRange = 'occurred_at >= @from AND occurred_at < @to';

  async function insert(name: TableName, rows: Row[]): Promise<void> {
    if (rows.length === 0) return;
    // insertId per row: a retried insertAll is deduplicated by BigQuery itself (best effort).
    await dataset.table(name).insert(
      rows.map((row, index) => ({ insertId: `${String(row.event_id)}:${index}`, json: row })),
      { raw: true },
    );
  }

  /** Which of `ids` each table already holds. */
  async function storedIds(ids: readonly string[]): Promise<Map<TableName, Set<string>>> {
    const sql = tableNames
      .map(
        (name) =>
          `SELECT '${name}' AS t, event_id FROM ${table(name)} WHERE event_id IN UNNEST(@ids)`,
      )
      .join(' UNION ALL ');
    const rows = await query(sql, { ids: [...ids] });
    const stored = new Map<TableName, Set<string>>(tableNames.map((name) => [name, new Set()]));
    for (const row of rows) stored.get(row.t as TableName)?.add(String(row.event_id));
    return stored;
  }

  async function writeRows(
    events: readonly BazaarEvent[],
    skip: Map<TableName, Set<string>> | undefined,
    only: readonly TableName[],
  ): Promise<void> {
    const rows = emptyFactRows();
    for (const event of events) addFactsOf(rows, event);
    const envelopes = new Map(events.map((event) => [event.id, event]));
    const byTable = tableRows(rows, envelopes, now().toISOString());
    // Facts before the raw row: a crash in between leaves facts whose raw row is missing, and the
    // redelivery then adds only the raw row (each table is checked on its own).
    const ordered = [
      ...only.filter((name) => name !== 'raw_events'),
      ...only.filter((name) => name === 'raw_events'),
    ];
    for (const name of ordered) {
      const stored = skip?.get(name);
      await insert(
        name,
        byTable[name].filter((row) => !stored?.has(String(row.event_id))),
      );
    }
  }

  const warehouse: Warehouse = {
    backend: 'bigquery',

    async open() {
      const [exists] = await dataset.exists();
      if (!exists) await client.createDataset(datasetId, { location });
      for (const name of tableNames) {
        const [tableExists] = await dataset.table(name).exists();
        if (!tableExists)
          await dataset.createTable(name, { schema: { fields: bigQuerySchema[name] } });
      }
    },

    append(events) {
      return exclusive(async (): Promise<AppendResult> => {
        const unique = uniqueById(events);
        if (unique.length === 0) return { inserted: 0, duplicates: events.length };
        const stored = await storedIds(unique.map((event) => event.id));
        const rawStored = stored.get('raw_events') ?? new Set<string>();
        await writeRows(unique, stored, tableNames);
        const inserted = unique.filter((event) => !rawStored.has(event.id)).length;
        return { inserted, duplicates: events.length - inserted };
      });
    },

    async summary(range) {
      const params = rangeParams(range);
      const [events] = await query(
        `SELECT COUNT(*) AS n FROM ${table('raw_events')} WHERE ${inRange}`,
        params,
      );
      const [orders] = await query(
        `SELECT COUNTIF(kind = 'placed') AS placed, COUNTIF(kind = 'confirmed') AS confirmed,
                COUNTIF(kind = 'cancelled') AS cancelled
         FROM ${table('order_facts')} WHERE ${inRange}`,
        params,
      );
      const payments = await query(
        `SELECT currency,
                COALESCE(SUM(IF(kind = 'captured', amount, 0)), 0) AS captured,
                COALESCE(SUM(IF(kind = 'refunded', amount, 0)), 0) AS refunded,
                COUNTIF(kind = 'failed') AS failed
         FROM ${table('payment_facts')} WHERE ${inRange} GROUP BY currency`,
        params,
      );
      return summaryFromRows(rowReader, events, orders, payments);
    },

    async ordersOverTime(range, interval: Interval) {
      const params = rangeParams(range);
      const unit = interval === 'hour' ? 'HOUR' : 'DAY';
      const orders = await query(
        `SELECT TIMESTAMP_TRUNC(occurred_at, ${unit}) AS bucket,
                COUNTIF(kind = 'placed') AS placed, COUNTIF(kind = 'confirmed') AS confirmed,
                COUNTIF(kind = 'cancelled') AS cancelled
         FROM ${table('order_facts')} WHERE ${inRange} GROUP BY bucket`,
        params,
      );
      const payments = await query(
        `SELECT TIMESTAMP_TRUNC(occurred_at, ${unit}) AS bucket, currency,
                SUM(IF(kind = 'captured', amount, 0)) - SUM(IF(kind = 'refunded', amount, 0)) AS net
         FROM ${table('payment_facts')}
         WHERE ${inRange} AND kind IN ('captured', 'refunded') GROUP BY bucket, currency`,
        params,
      );
      return seriesFromRows(rowReader, range, interval, orders, payments);
    },

    async conversion(range) {
      const [row] = await query(
        `WITH placed AS (
           SELECT DISTINCT order_id FROM ${table('order_facts')} WHERE kind = 'placed' AND ${inRange}),
         confirmed AS (SELECT DISTINCT order_id FROM ${table('order_facts')} WHERE kind = 'confirmed'),
         cancelled AS (SELECT DISTINCT order_id FROM ${table('order_facts')} WHERE kind = 'cancelled')
         SELECT (SELECT COUNT(*) FROM placed) AS placed,
                (SELECT COUNT(*) FROM placed JOIN confirmed USING (order_id)) AS confirmed,
                (SELECT COUNT(*) FROM placed JOIN cancelled USING (order_id)) AS cancelled`,
        rangeParams(range),
      );
      return {
        placed: toNumber(row?.placed),
        confirmed: toNumber(row?.confirmed),
        cancelled: toNumber(row?.cancelled),
      };
    },

    async cancellations(range) {
      const rows = await query(
        `SELECT cancel_reason AS reason, currency, COUNT(*) AS n, SUM(amount) AS amount
         FROM ${table('order_facts')} WHERE kind = 'cancelled' AND ${inRange}
         GROUP BY reason, currency`,
        rangeParams(range),
      );
      const byReason = new Map<string, { count: number; amount: Map<string, number> }>();
      for (const row of rows) {
        const reason = String(row.reason);
        const entry = byReason.get(reason) ?? { count: 0, amount: new Map<string, number>() };
        entry.count += toNumber(row.n);
        addAmount(entry.amount, String(row.currency), toNumber(row.amount));
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
      const rows = await query(
        `SELECT product_id, ARRAY_AGG(product_name ORDER BY occurred_at DESC LIMIT 1)[OFFSET(0)] AS name,
                currency, SUM(quantity) AS quantity, COUNT(DISTINCT order_id) AS orders,
                SUM(quantity * unit_amount) AS revenue
         FROM ${table('order_item_facts')}
         WHERE ${inRange} AND order_id IN (
           SELECT order_id FROM ${table('order_facts')} WHERE kind = 'confirmed')
         GROUP BY product_id, currency
         ORDER BY quantity DESC, product_id, currency
         LIMIT ${Math.max(1, Math.trunc(limit))}`,
        rangeParams(range),
      );
      return rows.map((row): TopProduct => ({
        productId: String(row.product_id),
        name: String(row.name),
        quantity: toNumber(row.quantity),
        orders: toNumber(row.orders),
        revenue: { amount: toNumber(row.revenue), currency: String(row.currency) },
      }));
    },

    rebuildFacts() {
      return exclusive(async (): Promise<RebuildResult> => {
        // BigQuery refuses DML on rows still in the streaming buffer (up to ~90 min after their
        // insert): rebuild when ingestion has been quiet that long (see README).
        for (const name of factTableNames) await query(`DELETE FROM ${table(name)} WHERE TRUE`);
        let events = 0;
        for await (const page of warehouse.readEvents(5_000)) {
          await writeRows(page, undefined, factTableNames);
          events += page.length;
        }
        return { events };
      });
    },

    async *readEvents(pageSize = 5_000) {
      const [job] = await client.createQueryJob({
        query: `SELECT envelope FROM ${table('raw_events')} ORDER BY occurred_at, event_id`,
        location,
      });
      let pageToken: string | undefined;
      do {
        const [rows, next] = await job.getQueryResults({
          maxResults: pageSize,
          autoPaginate: false,
          ...(pageToken === undefined ? {} : { pageToken }),
        });
        if (rows.length > 0) {
          yield rows.map((row: { envelope: string }) => JSON.parse(row.envelope) as BazaarEvent);
        }
        pageToken = next?.pageToken;
      } while (pageToken !== undefined);
    },

    async ping() {
      await query('SELECT 1 AS ok');
    },

    async close() {
      await tail;
      logger.debug('bigquery warehouse closed');
    },
  };
  return warehouse;
}
