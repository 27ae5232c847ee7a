import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { AnyBulkWriteOperation, Collection, Document, Filter } from 'mongodb';
import type { Logger } from '@bazaar/logging';
import { injectContext } from '@bazaar/telemetry';
import { reconnectDelayMs } from './broker-connection';
import { sleep } from './deadline';
import { eventIssues, invalidEventError, type BusEvent, type EventValidator } from './event';
import type { EventBus } from './event-bus';
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

/** Who holds a document's outbox for publishing, until when. */
export interface MongoOutboxLease {
  readonly owner: string;
  readonly token: string;
  readonly until: Date;
}

/** The fields the relay reads and writes on an aggregate document. */
export interface MongoOutboxFields {
  outbox?: MongoOutboxEntry[];
  outboxLease?: MongoOutboxLease;
}

/**
 * Outbox entries for events, to embed in a new aggregate document (`{ ...order, outbox: entries }`)
 * or to push in the same single-document update that changes the aggregate (see {@link pushToOutbox}).
 *
 * @throws `AppError('VALIDATION_FAILED')` when an event is invalid
 */
export function outboxEntries(
  events: readonly BusEvent[],
  validate: EventValidator,
  now: Date = new Date(),
): MongoOutboxEntry[] {
  const headers: Record<string, string> = {};
  injectContext(headers);
  return events.map((event) => {
    const issues = eventIssues(event, validate);
    if (issues.length > 0) throw invalidEventError(event, issues);
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
 *   { $set: { status: 'CONFIRMED' }, ...pushToOutbox([confirmed], validateEvent) },
 * );
 * ```
 */
export function pushToOutbox(
  events: readonly BusEvent[],
  validate: EventValidator,
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

function updateOne(
  filter: Filter<Document>,
  update: Record<string, unknown>,
): AnyBulkWriteOperation {
  return { updateOne: { filter, update } };
}

interface OutboxDocument extends MongoOutboxFields {
  _id: unknown;
}

/**
 * Publishes the events embedded in aggregate documents and removes exactly those it published. Each
 * round: find documents with pending entries and no live lease; claim them with one conditional
 * `updateMany` that sets a lease with a fresh token; read back the documents holding that token; publish
 * all their entries as one batch and await the confirms; then `$pullAll` the confirmed entries and drop
 * the lease, conditionally on still holding it. Entries written meanwhile stay. Several relays may run:
 * a lease keeps a document's entries with one relay at a time, and an expired lease (a dead relay) is
 * taken over. Delivery is at least once.
 *
 * FerretDB 1.24 note: `$pull` with a condition (`{ eventId: { $in: ids } }`) is accepted but removes
 * nothing, so the relay uses `$pullAll` with the exact entries it read.
 */
export function startMongoOutboxRelay(options: MongoOutboxRelayOptions): MongoOutboxRelay {
  const { collection } = options;
  const { bus, logger } = options;
  const owner = options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const batchSize = options.batchSize ?? 100;
  const leaseMs = options.leaseMs ?? 30_000;
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  const stopping = new AbortController();
  const wakeup = new Wakeup();
  let publishedCount = 0;

  async function relayRound(): Promise<{ claimed: number; failed: number }> {
    const now = new Date();
    const isFree: Filter<Document> = {
      $or: [{ outboxLease: { $exists: false } }, { 'outboxLease.until': { $lt: now } }],
    };
    const candidates = await collection
      .find(
        { 'outbox.eventId': { $exists: true }, ...isFree },
        { projection: { _id: 1 }, limit: batchSize },
      )
      .toArray();
    if (candidates.length === 0) return { claimed: 0, failed: 0 };
    const token = randomUUID();
    const lease: MongoOutboxLease = { owner, token, until: new Date(now.getTime() + leaseMs) };
    await collection.updateMany(
      { ...byId({ $in: candidates.map((doc) => doc._id) }), ...isFree },
      { $set: { outboxLease: lease } },
    );
    const claimed = (await collection
      .find({ 'outboxLease.token': token }, { projection: { outbox: 1 } })
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
    const published = new Map<unknown, MongoOutboxEntry[]>(claimed.map((doc) => [doc._id, []]));
    let firstFailure: unknown;
    pending.forEach(({ id, entry }, index) => {
      const result = results[index];
      if (result?.status === 'fulfilled') published.get(id)?.push(entry);
      else firstFailure ??= result?.reason;
    });
    const releases = [...published].map(([id, entries]) =>
      updateOne(
        byId(id, { 'outboxLease.token': token }),
        entries.length === 0
          ? { $unset: { outboxLease: '' } }
          : { $pullAll: { outbox: entries }, $unset: { outboxLease: '' } },
      ),
    );
    const released = await collection.bulkWrite(releases, { ordered: false });
    if (released.matchedCount < releases.length) {
      // A lease expired mid-round and another relay took the document: still remove what was published
      // here (it may publish some again: at least once), but leave its lease alone.
      const removals = [...published]
        .filter(([, entries]) => entries.length > 0)
        .map(([id, entries]) => updateOne(byId(id), { $pullAll: { outbox: entries } }));
      if (removals.length > 0) await collection.bulkWrite(removals, { ordered: false });
    }
    const failed = pending.length - results.filter((r) => r.status === 'fulfilled').length;
    publishedCount += pending.length - failed;
    if (failed > 0) {
      logger.warn(
        { err: firstFailure, collection: collection.collectionName, failed },
        'outbox events not published; they stay in their documents',
      );
    }
    return { claimed: claimed.length, failed };
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
