import { randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { batchedInsert } from './command-batch';

/** A stored response to replay. */
export interface StoredResponse {
  readonly status: number;
  readonly body: unknown;
}

interface IdempotencyKeyDocument {
  _id: string;
  userId: string;
  fingerprint: string;
  token: string;
  state: 'IN_FLIGHT' | 'DONE';
  /** The order the claiming request places; its response is rebuilt from the order once it exists. */
  orderId?: string;
  response?: StoredResponse;
  createdAt: Date;
  expiresAt: Date;
}

export type KeyClaim =
  | { readonly kind: 'claimed'; readonly token: string }
  | { readonly kind: 'replay'; readonly response: StoredResponse }
  | { readonly kind: 'mismatch' }
  | { readonly kind: 'in_flight' };

export interface KeyClaimRequest {
  readonly userId: string;
  readonly key: string;
  readonly fingerprint: string;
  /** The order this request will place if it gets the key. */
  readonly orderId: string;
  readonly now: Date;
  /** The first response for a key whose order exists, rebuilt from that order; undefined while it does not. */
  readonly responseOf: (orderId: string) => Promise<StoredResponse | undefined>;
}

export interface IdempotencyKeyRepository {
  /**
   * Claims the key for a new placement of `orderId`. There is no second write when the placement
   * succeeds: the stored order is the completion (its response is rebuilt from it), which saves a
   * round trip per order and also covers a process that dies right after storing the order.
   */
  claim(request: KeyClaimRequest): Promise<KeyClaim>;
  /** Gives a claimed key up (the request failed): a retry with it runs again. */
  release(userId: string, key: string, token: string): Promise<void>;
  deleteExpired(now: Date): Promise<number>;
}

export interface IdempotencyKeyOptions {
  readonly db: Db;
  readonly ttlMs: number;
  readonly inFlightMs: number;
}

export function createIdempotencyKeyRepository(
  options: IdempotencyKeyOptions,
): IdempotencyKeyRepository {
  const keys: Collection<IdempotencyKeyDocument> =
    options.db.collection<IdempotencyKeyDocument>('idempotency_keys');
  // Keys are scoped per user: one user's key never collides with another's.
  const idOf = (userId: string, key: string) => `${userId}:${key}`;
  // Claims of concurrent requests go to the database as one command (command-batch.ts).
  const insert = batchedInsert(keys, { isSame: (stored, mine) => stored.token === mine.token });

  return {
    async claim({ userId, key, fingerprint, orderId, now, responseOf }) {
      const _id = idOf(userId, key);
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const token = randomUUID();
        // The claim is an insert: a unique `_id` is the one write FerretDB makes atomic, so of
        // fifty identical requests exactly one gets here.
        const claimed = await insert({
          _id,
          userId,
          fingerprint,
          token,
          state: 'IN_FLIGHT',
          orderId,
          createdAt: now,
          expiresAt: new Date(now.getTime() + options.ttlMs),
        });
        if (claimed) return { kind: 'claimed', token };
        const existing = await keys.findOne({ _id });
        if (existing === null) continue;
        if (existing.expiresAt.getTime() <= now.getTime()) {
          await keys.deleteOne({ _id, token: existing.token });
          continue;
        }
        if (existing.fingerprint !== fingerprint) return { kind: 'mismatch' };
        if (existing.state === 'DONE' && existing.response !== undefined) {
          return { kind: 'replay', response: existing.response };
        }
        const response =
          existing.orderId === undefined ? undefined : await responseOf(existing.orderId);
        if (response !== undefined) return { kind: 'replay', response };
        if (now.getTime() - existing.createdAt.getTime() < options.inFlightMs) {
          return { kind: 'in_flight' };
        }
        // Claimed by a request that never finished (its process died): the key may be used again.
        await keys.deleteOne({ _id, token: existing.token, state: 'IN_FLIGHT' });
      }
      return { kind: 'in_flight' };
    },
    async release(userId, key, token) {
      await keys.deleteOne({ _id: idOf(userId, key), token });
    },
    async deleteExpired(now) {
      // FerretDB 1.24 has no TTL indexes (`expireAfterSeconds` is "not implemented"), so the janitor
      // deletes expired keys itself.
      const result = await keys.deleteMany({ expiresAt: { $lte: now } });
      return result.deletedCount;
    },
  };
}
