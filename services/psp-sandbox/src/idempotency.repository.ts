import { createHash } from 'node:crypto';

/** A reply kept for replay: status, content type and body, exactly as first sent. */
export interface StoredReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: unknown;
}

/** What {@link IdempotencyRepository.begin} found for a key. */
export type BeginOutcome =
  | { readonly kind: 'started' }
  | { readonly kind: 'replay'; readonly reply: StoredReply }
  | { readonly kind: 'in_progress' }
  | { readonly kind: 'mismatch' };

interface Entry {
  readonly fingerprint: string;
  readonly expiresAt: number;
  reply: StoredReply | undefined;
}

/**
 * Idempotency-Keys and the replies sent for them. This sandbox keeps them in memory (lost on
 * restart, not shared between instances), which is enough for a test card processor; a real one
 * stores them durably.
 */
export interface IdempotencyRepository {
  /** Claims `key` for a request with `fingerprint`, or says why it cannot be processed again. */
  begin(key: string, fingerprint: string): BeginOutcome;
  /** Stores the reply of a claimed key, to be replayed until the key expires. */
  complete(key: string, reply: StoredReply): void;
  /** Releases a claimed key whose request failed unexpectedly, so a retry can process it. */
  abandon(key: string): void;
  /** How many keys are held. */
  readonly size: number;
}

/** Options of {@link createIdempotencyRepository}. */
export interface IdempotencyRepositoryOptions {
  readonly ttlMs: number;
  readonly maxKeys: number;
  readonly now?: () => number;
}

/** A stable fingerprint of a request body: SHA-256 of its JSON with object keys sorted. */
export function fingerprintOf(body: unknown): string {
  const canonical = JSON.stringify(body, (_key, value: unknown) =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(
          Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : value,
  );
  return createHash('sha256').update(canonical).digest('hex');
}

/**
 * An in-memory {@link IdempotencyRepository}. Keys expire `ttlMs` after they are claimed; at most
 * `maxKeys` are kept (the oldest go first), so memory stays bounded under any load.
 */
export function createIdempotencyRepository(
  options: IdempotencyRepositoryOptions,
): IdempotencyRepository {
  const { ttlMs, maxKeys, now = Date.now } = options;
  // A Map iterates in insertion order and every key gets the same TTL, so the oldest entries, the
  // first to expire, are always at the front.
  const entries = new Map<string, Entry>();

  function dropExpired(at: number): void {
    for (const [key, entry] of entries) {
      if (entry.expiresAt > at) break;
      entries.delete(key);
    }
  }

  function makeRoom(): void {
    for (const key of entries.keys()) {
      if (entries.size < maxKeys) break;
      entries.delete(key);
    }
  }

  return {
    begin(key, fingerprint) {
      const at = now();
      dropExpired(at);
      const entry = entries.get(key);
      if (entry === undefined) {
        makeRoom();
        entries.set(key, { fingerprint, expiresAt: at + ttlMs, reply: undefined });
        return { kind: 'started' };
      }
      if (entry.fingerprint !== fingerprint) return { kind: 'mismatch' };
      return entry.reply === undefined
        ? { kind: 'in_progress' }
        : { kind: 'replay', reply: entry.reply };
    },
    complete(key, reply) {
      const entry = entries.get(key);
      if (entry !== undefined) entry.reply = reply;
    },
    abandon(key) {
      if (entries.get(key)?.reply === undefined) entries.delete(key);
    },
    get size() {
      return entries.size;
    },
  };
}
