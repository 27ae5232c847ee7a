// The warehouse seen by the rest of the service: one interface, two adapters (DuckDB embedded, the
// default; BigQuery). Each adapter owns its SQL; the shapes here are what the API returns.
import type { BazaarEvent, Money } from '@bazaar/contracts';

/** A half-open time range [from, to) over each fact's business time. */
export interface TimeRange {
  readonly from: Date;
  readonly to: Date;
}

export type Interval = 'hour' | 'day';

export interface AppendResult {
  /** Events written now. */
  readonly inserted: number;
  /** Events the warehouse already had (redeliveries, replays) or that repeated within the batch. */
  readonly duplicates: number;
}

export interface Summary {
  /** Events of any type whose envelope time is in the range. */
  readonly events: number;
  readonly ordersPlaced: number;
  readonly ordersConfirmed: number;
  readonly ordersCancelled: number;
  readonly paymentsFailed: number;
  /** Captured − refunded, per currency (sorted by currency). */
  readonly revenue: Money[];
  readonly captured: Money[];
  readonly refunded: Money[];
}

export interface TimeBucket {
  /** Start of the bucket, UTC, ISO 8601. */
  readonly start: string;
  readonly ordersPlaced: number;
  readonly ordersConfirmed: number;
  readonly ordersCancelled: number;
  readonly revenue: Money[];
}

export interface Conversion {
  /** Orders placed in the range… */
  readonly placed: number;
  /** …of which confirmed / cancelled by now (at any time). */
  readonly confirmed: number;
  readonly cancelled: number;
}

export interface CancellationCount {
  readonly reason: string;
  readonly count: number;
  /** Order totals that were not charged, per currency. */
  readonly amount: Money[];
}

export interface TopProduct {
  readonly productId: string;
  readonly name: string;
  /** Units sold in confirmed orders placed in the range. */
  readonly quantity: number;
  readonly orders: number;
  readonly revenue: Money;
}

export interface RebuildResult {
  /** Raw events the facts were rebuilt from. */
  readonly events: number;
}

/** A stored raw event, as replay and export read them back. */
export type StoredEvent = BazaarEvent;

export interface Warehouse {
  readonly backend: 'duckdb' | 'bigquery';
  /** Creates tables (idempotent). */
  open(): Promise<void>;
  /**
   * Writes the events not yet in the warehouse, atomically, and resolves once that is durable.
   * Exactly once per event id, however often an event is offered.
   */
  append(events: readonly BazaarEvent[]): Promise<AppendResult>;
  summary(range: TimeRange): Promise<Summary>;
  ordersOverTime(range: TimeRange, interval: Interval): Promise<TimeBucket[]>;
  conversion(range: TimeRange): Promise<Conversion>;
  cancellations(range: TimeRange): Promise<CancellationCount[]>;
  topProducts(range: TimeRange, limit: number): Promise<TopProduct[]>;
  /** Drops every fact row and derives them again from the raw events (idempotent). */
  rebuildFacts(): Promise<RebuildResult>;
  /** Every stored raw event, oldest first, in pages. */
  readEvents(pageSize?: number): AsyncIterable<StoredEvent[]>;
  /** For `/readyz`. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
