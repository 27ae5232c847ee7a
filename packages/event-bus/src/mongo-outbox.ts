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
  /**
   * Least time between two searches of the whole collection for pending entries, when writers name
   * their documents through `wake(ids)`. The search finds what no hint named (documents written
   * before a crash, by another instance, or while the hint queue was full); on FerretDB 1.24 it reads
   * every document of the collection (no pushdown of `$exists`/`$in`), so between searches a round
   * claims only the named documents, each read by its `_id`. Default: `pollIntervalMs`.
   */
  readonly scanIntervalMs?: number;
  /** Documents removed from their outbox at once (one `updateOne` each). Default 16. */
  readonly removalConcurrency?: number;
  /** Deadline of one round's publish. Default: the bus's. */
  readonly publishTimeoutMs?: number;
  /**
   * Called with the ids whose leases a round just dropped: a writer that shares the lease collection
   * as its lock (see the orders service) wakes its waiters instead of letting them poll.
   */
  readonly onLeasesReleased?: (ids: readonly unknown[]) => void;
  /**
   * How long published entries may stay in their document before the relay removes them, so that the
   * aggregate's next write (which the writer makes anyway, under the same lease as its lock) can drop
   * them instead: see {@link MongoOutboxRelay.takePublished}. 0 (default): removed in the same round.
   * Until removed they are skipped by the search; after a crash they are published again (at least once).
   */
  readonly deferRemovalMs?: number;
}

/** Entries just written to one document's outbox (see {@link MongoOutboxRelay.written}). */
export interface WrittenOutbox {
  readonly id: unknown;
  readonly entries: readonly MongoOutboxEntry[];
}

/** A running relay. */
export interface MongoOutboxRelay {
  /**
   * Look for documents now (call it after writing events to skip the polling delay). With `ids`, the
   * documents just written: the next round claims them without searching the collection.
   */
  wake(ids?: readonly unknown[]): void;
  /**
   * Hands the relay the entries just written to these documents (what {@link outboxEntries} or
   * {@link pushToOutbox} put there): the next round claims them and publishes these entries without
   * reading the documents. Delivery stays at least once; an entry published by another relay in the
   * meantime may be published twice.
   */
  written(documents: readonly WrittenOutbox[]): void;
  /**
   * The entries of this document that were published and not removed yet (with `deferRemovalMs`), handed
   * to the caller, who must hold the document's lease as its lock and remove them in its next write of
   * the document; undefined when there are none. The relay forgets them: if that write fails, give them
   * back with {@link restorePublished}.
   */
  takePublished(id: unknown): MongoOutboxEntry[] | undefined;
  /** Gives back entries from {@link takePublished} that the caller did not remove. */
  restorePublished(id: unknown, entries: readonly MongoOutboxEntry[]): void;
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

/**
 * The indexes of a failed unordered insertMany's documents that collided with an existing `_id`
 * (code 11000); rethrows any other error. Inserting `_id`s is how leases and locks are taken on
 * FerretDB, where only an insert is atomic.
 */
export function duplicateIndexes(error: unknown): Set<number> {
  const writeErrors = (error as { writeErrors?: unknown }).writeErrors;
  const list: unknown[] = Array.isArray(writeErrors)
    ? writeErrors
    : writeErrors === undefined
      ? []
      : [writeErrors];
  if (list.length === 0) throw error;
  const indexes = new Set<number>();
  for (const writeError of list) {
    const { index, code } = writeError as { index?: unknown; code?: unknown };
    if (code !== 11000 || typeof index !== 'number') throw error;
    indexes.add(index);
  }
  return indexes;
}

/** Runs `work` over `items`, at most `limit` at a time, in order of the items. */
async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await work(items[index] as T);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => worker()));
  return results;
}

/** Most document ids remembered from `wake(ids)`; beyond it, the next search of the collection finds them. */
const MAX_HINTS = 50_000;

/**
 * Publishes the events embedded in aggregate documents and removes exactly those it published. Each
 * round takes the documents writers named through `wake(ids)` and, at most every `scanIntervalMs`,
 * searches the collection for pending entries that no live lease covers; claims them all with one
 * unordered `insertMany` of leases `{ _id: <document id>, owner, token, until }` into the lease
 * collection (the unique `_id` makes each claim atomic — one relay wins); reads each claimed document
 * by its `_id`; publishes all their entries as one batch and awaits the confirms; `$pullAll`s the
 * confirmed entries of each document (exact values, so entries written meanwhile stay; several
 * documents at once); drops the leases. A dead relay's leases expire after `leaseMs` and are taken
 * over. Delivery is at least once.
 *
 * Leases live outside the aggregate so the relay writes an aggregate document once per round: FerretDB
 * 1.24 does not make single-document updates atomic under concurrency (see the README), and every relay
 * write to a document is a chance to collide with a business write to it.
 *
 * FerretDB 1.24 notes: `$pull` with a condition (`{ eventId: { $in: ids } }`) is accepted but removes
 * nothing, so the relay uses `$pullAll` with the exact entries it read; `$exists` and `$in` are not
 * pushed down to PostgreSQL (every document of the collection is read and filtered), which is why a
 * round reads named documents one `_id` at a time and searches the whole collection only now and then.
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
  const scanIntervalMs = options.scanIntervalMs ?? pollIntervalMs;
  const removalConcurrency = options.removalConcurrency ?? 16;
  const stopping = new AbortController();
  const wakeup = new Wakeup();
  // Insertion-ordered, so the oldest named documents go first; with the entries written to them when
  // the writer handed them over (no read needed), undefined when only the id is known.
  const hinted = new Map<unknown, MongoOutboxEntry[] | undefined>();
  let lastScanAt = Number.NEGATIVE_INFINITY;
  // A `wake()` that named no documents asks for a search (a writer that does not name its documents).
  let isSearchRequested = false;
  let publishedCount = 0;
  const deferRemovalMs = options.deferRemovalMs ?? 0;
  // Published entries whose removal waits for the document's next write (or their due time).
  const owed = new Map<unknown, { entries: MongoOutboxEntry[]; dueAt: number }>();

  function owe(id: unknown, entries: readonly MongoOutboxEntry[], dueAt: number): void {
    const known = owed.get(id);
    owed.set(id, {
      entries: [...(known?.entries ?? []), ...entries],
      dueAt: known?.dueAt ?? dueAt,
    });
  }

  function takeHints(): Map<unknown, MongoOutboxEntry[] | undefined> {
    const taken = new Map<unknown, MongoOutboxEntry[] | undefined>();
    for (const [id, entries] of hinted) {
      if (taken.size >= batchSize) break;
      taken.set(id, entries);
      hinted.delete(id);
    }
    return taken;
  }

  function hint(id: unknown, entries: readonly MongoOutboxEntry[] | undefined): void {
    if (!hinted.has(id) && hinted.size >= MAX_HINTS) return;
    const known = hinted.get(id);
    // Only the id known (now or before): the round reads the document and finds every entry.
    hinted.set(
      id,
      entries === undefined || (hinted.has(id) && known === undefined)
        ? undefined
        : [...(known ?? []), ...entries],
    );
  }

  /** Documents with pending entries that no live lease covers (reads the whole collection on FerretDB). */
  async function search(now: Date, limit: number, exclude: readonly unknown[]): Promise<unknown[]> {
    await leases.deleteMany({ until: { $lt: now } });
    const held = await leases.find({}, { projection: { _id: 1 } }).toArray();
    const candidates = await collection
      .find(
        {
          'outbox.eventId': { $exists: true },
          ...byId({ $nin: [...held.map((lease) => lease._id), ...exclude] }),
        },
        { projection: { _id: 1 }, limit },
      )
      .toArray();
    // Documents waiting in the hints are published by the round that takes them; those with published
    // entries owed a removal are removed when due.
    return candidates.map((doc) => doc._id).filter((id) => !hinted.has(id) && !owed.has(id));
  }

  /** Claims documents with one unordered insert of their leases; returns the ids this relay now holds. */
  async function claim(ids: readonly unknown[], now: Date, token: string): Promise<unknown[]> {
    if (ids.length === 0) return [];
    const until = new Date(now.getTime() + leaseMs);
    try {
      await leases.insertMany(ids.map((id) => ({ _id: id, owner, token, until })) as Document[], {
        ordered: false,
      });
      return [...ids];
    } catch (error) {
      let taken: Set<number>;
      try {
        taken = duplicateIndexes(error);
      } catch (unexpected) {
        await leases.deleteMany({ token });
        throw unexpected;
      }
      return ids.filter((_, index) => !taken.has(index));
    }
  }

  async function relayRound(isFinal = false): Promise<{ claimed: number; failed: number }> {
    const token = randomUUID();
    const now = new Date();
    const taken = takeHints();
    const ids = [...taken.keys()];
    const due = new Set<unknown>();
    for (const [id, { dueAt }] of owed) {
      if (ids.length >= batchSize) break;
      if ((isFinal || dueAt <= now.getTime()) && !taken.has(id)) {
        ids.push(id);
        due.add(id);
      }
    }
    const isSearchDue =
      ids.length < batchSize && (isSearchRequested || Date.now() - lastScanAt >= scanIntervalMs);
    if (isSearchDue) {
      isSearchRequested = false;
      lastScanAt = Date.now();
      ids.push(...(await search(now, batchSize - ids.length, ids)));
    }
    const claimedIds = await claim(ids, now, token);
    if (claimedIds.length === 0) return { claimed: 0, failed: 0 };
    const owedNow = new Map<unknown, MongoOutboxEntry[]>();
    let isRemovalReached = false;
    try {
      // Held under our lease now: nobody else takes these owed entries meanwhile.
      for (const id of claimedIds) {
        const entries = owed.get(id)?.entries;
        owed.delete(id);
        if (entries !== undefined) owedNow.set(id, entries);
      }
      const claimed = (
        await mapLimited(
          claimedIds.filter((id) => !due.has(id)),
          removalConcurrency,
          async (id): Promise<OutboxDocument | null> => {
            const entries = taken.get(id);
            if (entries !== undefined) return { _id: id, outbox: entries };
            return collection.findOne<OutboxDocument>(byId(id), { projection: { outbox: 1 } });
          },
        )
      ).filter((doc): doc is OutboxDocument => doc !== null);
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
      // One single-statement update per document (FerretDB 1.24 deadlocks when two multi-statement
      // update commands — bulkWrite — run at once); the documents are distinct and leased, so several
      // run side by side.
      isRemovalReached = true;
      const removals = new Map<unknown, MongoOutboxEntry[]>(owedNow);
      const dueAt = Date.now() + deferRemovalMs;
      for (const [id, entries] of published) {
        const all = [...(removals.get(id) ?? []), ...entries];
        if (deferRemovalMs > 0 && !isFinal && owed.size < MAX_HINTS) {
          owe(id, all, dueAt);
          removals.delete(id);
        } else {
          removals.set(id, all);
        }
      }
      try {
        await mapLimited([...removals], removalConcurrency, async ([id, entries]) => {
          const removal: Document = { $pullAll: { outbox: entries } };
          await collection.updateOne(byId(id), removal);
          removals.delete(id);
        });
      } finally {
        // Not removed (the round failed): owed again, removed by a later round.
        for (const [id, entries] of removals) owe(id, entries, Date.now());
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
      return { claimed: claimedIds.length, failed };
    } finally {
      if (!isRemovalReached) for (const [id, entries] of owedNow) owe(id, entries, Date.now());
      await leases.deleteMany({ token });
      options.onLeasesReleased?.(claimedIds);
    }
  }

  async function work(): Promise<void> {
    let failures = 0;
    while (!stopping.signal.aborted) {
      try {
        const { claimed, failed } = await relayRound();
        if (failed === 0) {
          failures = 0;
          if (claimed < batchSize && hinted.size === 0) {
            await wakeup.wait(pollIntervalMs, stopping.signal);
          }
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
    wake(ids) {
      if (ids === undefined) isSearchRequested = true;
      for (const id of ids ?? []) hint(id, undefined);
      wakeup.wake();
    },
    written(documents) {
      for (const { id, entries } of documents) hint(id, entries);
      wakeup.wake();
    },
    get publishedCount() {
      return publishedCount;
    },
    takePublished(id) {
      const entries = owed.get(id)?.entries;
      owed.delete(id);
      return entries;
    },
    restorePublished(id, entries) {
      if (entries.length > 0) owe(id, entries, Date.now());
    },
    async stop() {
      stopping.abort();
      await running;
      // Remove what is still owed, so a restart does not publish it again.
      for (let attempt = 0; attempt < 3 && owed.size > 0; attempt += 1) {
        await relayRound(true).catch((error: unknown) => {
          logger.warn(
            { err: error, owed: owed.size },
            'published outbox entries not removed at stop',
          );
        });
      }
    },
  };
}
