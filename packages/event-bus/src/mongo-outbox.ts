import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Collection, Document, Filter } from 'mongodb';
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

/** One event waiting in an aggregate document's embedded outbox. */
export interface MongoOutboxEntry {
  readonly eventId: string;
  readonly type: string;
  /** The whole CloudEvents envelope, as it will be published. */
  readonly payload: BusEvent;
  /** W3C trace context of the write that produced the event. */
  readonly headers: Readonly<Record<string, string>>;
  readonly createdAt: Date;
}

/** A relay's claim on one document's outbox, kept in the lease collection (`_id` = the document's). */
export interface MongoOutboxLease {
  readonly _id: unknown;
  readonly owner: string;
  readonly token: string;
  readonly until: Date;
}

/** The field the relay reads and trims on an aggregate document. */
export interface MongoOutboxFields {
  outbox?: MongoOutboxEntry[];
}

/**
 * Outbox entries for events, to embed in a new aggregate document (`{ ...order, outbox: entries }`)
 * or to push in the same single-document update that changes the aggregate (see {@link pushToOutbox}).
 *
 * @throws `AppError('VALIDATION_FAILED')` when an event is invalid
 */
export function outboxEntries(
  events: readonly BusEvent[],
  validate: EventValidator = defaultValidator,
  now: Date = new Date(),
): MongoOutboxEntry[] {
  return events.map((event) => {
    const issues = eventIssues(event, validate);
    if (issues.length > 0) throw invalidEventError(event, issues);
    const headers = traceHeaders({ event });
    return { eventId: event.id, type: event.type, payload: event, headers, createdAt: now };
  });
}

/**
 * The `$push` part of an update that appends events to the document's outbox. Merge it with the
 * aggregate's own changes in ONE `updateOne`, so the change and its events commit together (FerretDB
 * has no multi-document transactions).
 *
 * @example
 * ```ts
 * await orders.updateOne(
 *   { _id: orderId, status: 'PENDING' },
 *   { $set: { status: 'CONFIRMED' }, ...pushToOutbox([confirmed]) },
 * );
 * ```
 */
export function pushToOutbox(
  events: readonly BusEvent[],
  validate: EventValidator = defaultValidator,
): { $push: { outbox: { $each: MongoOutboxEntry[] } } } {
  return { $push: { outbox: { $each: outboxEntries(events, validate) } } };
}

/** Creates the index the relay's search uses (a multikey index on the entries' ids). Idempotent. */
export async function ensureOutboxIndex(collection: Collection<Document>): Promise<void> {
  await collection.createIndex({ 'outbox.eventId': 1 }, { name: 'outbox_pending' });
}

/** Options of {@link startMongoOutboxRelay}. */
export interface MongoOutboxRelayOptions {
  /** The aggregate collection whose documents embed an `outbox` array. */
  readonly collection: Collection<Document>;
  /** Where claims are kept. Default: `<collection>_outbox_leases` in the same database. */
  readonly leaseCollection?: Collection<Document>;
  readonly bus: Pick<EventBus, 'publishBatch'>;
  readonly logger: Logger;
  /** Names this relay in leases. Default `<hostname>:<pid>:<random>`. */
  readonly owner?: string;
  /** Documents claimed per round. Default 100. */
  readonly batchSize?: number;
  /** How long a claim lasts if its relay dies. Must exceed a round's duration. Default 30 s. */
  readonly leaseMs?: number;
  /** Polling interval when idle (FerretDB has no change streams). Default 500 ms. */
  readonly pollIntervalMs?: number;
  /** Deadline of one round's publish. Default: the bus's. */
  readonly publishTimeoutMs?: number;
}

/** A running relay. */
export interface MongoOutboxRelay {
  /** Look for documents now (call it after writing events to skip the polling delay). */
  wake(): void;
  /** Events this relay published and removed from outboxes so far. */
  readonly publishedCount: number;
  /** Stops; resolves when the round in flight is finished. */
  stop(): Promise<void>;
}

// Aggregates choose their own `_id` type (Bazaar uses prefixed strings); the driver's default is ObjectId.
function byId(id: unknown, extra: Record<string, unknown> = {}): Filter<Document> {
  return { _id: id, ...extra } as Filter<Document>;
}

interface OutboxDocument extends MongoOutboxFields {
  _id: unknown;
}

function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 11000;
}

/**
 * Publishes the events embedded in aggregate documents and removes exactly those it published. Each
 * round: find documents with pending entries that no live lease covers; claim each by inserting a lease
 * `{ _id: <document id>, owner, token, until }` into the lease collection (the unique `_id` makes a claim
 * atomic — one relay wins); read the claimed documents; publish all their entries as one batch and await
 * the confirms; `$pullAll` the confirmed entries (exact values, so entries written meanwhile stay); drop
 * the leases. A dead relay's leases expire after `leaseMs` and are taken over. Delivery is at least once.
 *
 * Leases live outside the aggregate so the relay writes an aggregate document once per round: FerretDB
 * 1.24 does not make single-document updates atomic under concurrency (see the README), and every relay
 * write to a document is a chance to collide with a business write to it.
 *
 * FerretDB 1.24 note: `$pull` with a condition (`{ eventId: { $in: ids } }`) is accepted but removes
 * nothing, so the relay uses `$pullAll` with the exact entries it read.
 */
export function startMongoOutboxRelay(options: MongoOutboxRelayOptions): MongoOutboxRelay {
  const { collection, bus, logger } = options;
  const leases =
    options.leaseCollection ??
    collection.db.collection(`${collection.collectionName}_outbox_leases`);
  const owner = options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const batchSize = options.batchSize ?? 100;
  const leaseMs = options.leaseMs ?? 30_000;
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  const stopping = new AbortController();
  const wakeup = new Wakeup();
  let publishedCount = 0;

  /** Claims documents by inserting their leases; returns the ids this relay now holds. */
  async function claim(now: Date, token: string): Promise<unknown[]> {
    await leases.deleteMany({ until: { $lt: now } });
    const held = await leases.find({}, { projection: { _id: 1 } }).toArray();
    const candidates = await collection
      .find(
        { 'outbox.eventId': { $exists: true }, ...byId({ $nin: held.map((lease) => lease._id) }) },
        { projection: { _id: 1 }, limit: batchSize },
      )
      .toArray();
    const until = new Date(now.getTime() + leaseMs);
    const claims = await Promise.allSettled(
      candidates.map((doc) => leases.insertOne({ _id: doc._id, owner, token, until })),
    );
    const unexpected = claims.find(
      (claim): claim is PromiseRejectedResult =>
        claim.status === 'rejected' && !isDuplicateKey(claim.reason),
    );
    if (unexpected !== undefined) {
      await leases.deleteMany({ token });
      throw unexpected.reason;
    }
    return candidates
      .filter((_, index) => claims[index]?.status === 'fulfilled')
      .map((doc) => doc._id);
  }

  async function relayRound(): Promise<{ claimed: number; failed: number }> {
    const token = randomUUID();
    const ids = await claim(new Date(), token);
    if (ids.length === 0) return { claimed: 0, failed: 0 };
    try {
      const claimed = (await collection
        .find(byId({ $in: ids }), { projection: { outbox: 1 } })
        .toArray()) as OutboxDocument[];
      const pending = claimed.flatMap((doc) =>
        (doc.outbox ?? []).map((entry) => ({ id: doc._id, entry })),
      );
      const results =
        pending.length === 0
          ? []
          : await bus.publishBatch(
              pending.map(({ entry }) => ({ event: entry.payload, headers: entry.headers })),
              options.publishTimeoutMs === undefined ? {} : { timeoutMs: options.publishTimeoutMs },
            );
      const published = new Map<unknown, MongoOutboxEntry[]>();
      let firstFailure: unknown;
      pending.forEach(({ id, entry }, index) => {
        if (results[index]?.status === 'fulfilled') {
          published.set(id, [...(published.get(id) ?? []), entry]);
        } else {
          firstFailure ??= results[index]?.reason;
        }
      });
      // One update per document, one at a time: FerretDB 1.24 deadlocks when two multi-statement
      // update commands (bulkWrite) run at once.
      for (const [id, entries] of published) {
        const removal: Document = { $pullAll: { outbox: entries } };
        await collection.updateOne(byId(id), removal);
      }
      const confirmed = [...published.values()].reduce((sum, entries) => sum + entries.length, 0);
      publishedCount += confirmed;
      const failed = pending.length - confirmed;
      if (failed > 0) {
        logger.warn(
          { err: firstFailure, collection: collection.collectionName, failed },
          'outbox events not published; they stay in their documents',
        );
      }
      return { claimed: ids.length, failed };
    } finally {
      await leases.deleteMany({ token });
    }
  }

  async function work(): Promise<void> {
    let failures = 0;
    while (!stopping.signal.aborted) {
      try {
        const { claimed, failed } = await relayRound();
        if (failed === 0) {
          failures = 0;
          if (claimed < batchSize) await wakeup.wait(pollIntervalMs, stopping.signal);
          continue;
        }
        failures += 1;
      } catch (error) {
        failures += 1;
        if (!stopping.signal.aborted) {
          logger.warn(
            { err: error, collection: collection.collectionName },
            'outbox relay round failed',
          );
        }
      }
      await sleep(Math.max(100, reconnectDelayMs(failures, 250, 5000)), stopping.signal);
    }
  }

  const running = work();
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
