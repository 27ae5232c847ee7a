import { randomUUID } from 'node:crypto';
import type { Collection } from 'mongodb';
import { batchedInsert, CommandBatch } from './command-batch';
import { lockBusy } from './errors';

// Mutual exclusion per document, for FerretDB. FerretDB 1.24 (PostgreSQL backend) does not make a
// single-document update atomic under concurrency: conditions are checked on a read that a concurrent
// writer may overwrite (see docs/adr/0003). An insert with a unique `_id` is atomic (PostgreSQL's
// unique index decides), so a lock is a document `{ _id, owner, token, until }`: the one insert that
// succeeds holds it; it is removed by its token; one whose holder died expires after the lease.
// On MongoDB the guarded writes are atomic anyway; the lock then only costs two round trips.

export interface LockDocument {
  _id: string;
  owner: string;
  token: string;
  until: Date;
}

export interface WriteLocks {
  /** Runs `work` while holding the lock on `id`; throws 503 `lock_busy` after the wait limit. */
  withLock<T>(id: string, work: () => Promise<T>): Promise<T>;
  /** Tells waiters in this process that these locks were just released (they try again now). */
  released(ids: readonly unknown[]): void;
}

export interface WriteLockOptions {
  readonly collection: Collection<LockDocument>;
  /** Names the holder in the lock document (instance id). */
  readonly owner: string;
  readonly leaseMs: number;
  readonly waitMs: number;
  /** What is locked, for the error message ("product stock", "order"). */
  readonly what: string;
}

/** How often a waiter reads the lock it waits for, to find one abandoned past its lease. */
const EXPIRY_CHECK_INTERVAL_MS = 250;

export function createWriteLocks(options: WriteLockOptions): WriteLocks {
  const { collection, owner, leaseMs, waitMs, what } = options;
  // Callers in this process queue per id, so at most one of them polls the database for a lock:
  // hundreds of concurrent pollers of one lock slow down the holder's own writes.
  const tails = new Map<string, Promise<unknown>>();
  // Waiters of a lock this process saw released (its own outbox relay's leases): they try again at
  // once instead of at their next poll.
  const waiters = new Map<string, Set<() => void>>();
  // Lock inserts and deletes of the same moment go to the database as one command each: locks of
  // many orders or products taken at once cost one round trip, not one per lock.
  const insert = batchedInsert(collection, {
    isSame: (stored, mine) => stored.token === mine.token,
  });
  const deletes = new CommandBatch<{ _id: string; token: string }, void>(async (locks) => {
    if (locks.length === 1) await collection.deleteOne(locks[0]);
    else await collection.deleteMany({ $or: locks });
    return locks.map(() => undefined);
  });

  function pause(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const set = waiters.get(id) ?? new Set<() => void>();
      waiters.set(id, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && waiters.get(id) === set) waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  async function acquire(id: string): Promise<string> {
    const token = randomUUID();
    const giveUpAt = Date.now() + waitMs;
    let delayMs = 1;
    let nextExpiryCheckAt = 0;
    for (;;) {
      if (await insert({ _id: id, owner, token, until: new Date(Date.now() + leaseMs) })) {
        return token;
      }
      // Only a holder that died leaves a lock past its lease, so the lock is read now and then, not
      // on every attempt: each poll is then one insert instead of two round trips.
      if (Date.now() >= nextExpiryCheckAt) {
        nextExpiryCheckAt = Date.now() + EXPIRY_CHECK_INTERVAL_MS;
        const held = await collection.findOne({ _id: id });
        if (held !== null && held.until.getTime() < Date.now()) {
          // Abandoned by a holder that died: removed by its own token, so a live successor's lock is
          // never the one deleted.
          await collection.deleteOne({ _id: id, token: held.token });
          continue;
        }
      }
      if (Date.now() >= giveUpAt) throw lockBusy(what);
      await pause(id, delayMs * (0.5 + Math.random()));
      delayMs = Math.min(delayMs * 2, 50);
    }
  }

  async function locked<T>(id: string, work: () => Promise<T>): Promise<T> {
    const token = await acquire(id);
    try {
      return await work();
    } finally {
      await deletes.run({ _id: id, token });
    }
  }

  return {
    withLock<T>(id: string, work: () => Promise<T>): Promise<T> {
      const previous = tails.get(id) ?? Promise.resolve();
      const run = previous.then(
        () => locked(id, work),
        () => locked(id, work),
      );
      const tail = run.catch(() => undefined);
      tails.set(id, tail);
      void tail.then(() => {
        if (tails.get(id) === tail) tails.delete(id);
      });
      return run;
    },
    released(ids) {
      for (const id of ids) {
        for (const wake of [...(waiters.get(String(id)) ?? [])]) wake();
      }
    },
  };
}
