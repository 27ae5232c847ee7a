import { describe, expect, it } from 'vitest';
import { createIdempotencyRepository, fingerprintOf } from './idempotency.repository';

const reply = { status: 201, contentType: 'application/json', body: { id: 'auth_1' } };

function repository(options: { ttlMs?: number; maxKeys?: number } = {}) {
  let clock = 1_000;
  const repo = createIdempotencyRepository({
    ttlMs: options.ttlMs ?? 60_000,
    maxKeys: options.maxKeys ?? 100,
    now: () => clock,
  });
  return { repo, advance: (ms: number) => void (clock += ms) };
}

describe('fingerprintOf', () => {
  it('ignores object key order but not values, array order or nesting', () => {
    const base = fingerprintOf({ token: 't', amount: { amount: 1, currency: 'USD' } });
    expect(fingerprintOf({ amount: { currency: 'USD', amount: 1 }, token: 't' })).toBe(base);
    expect(fingerprintOf({ token: 't', amount: { amount: 2, currency: 'USD' } })).not.toBe(base);
    expect(fingerprintOf({ list: [1, 2] })).not.toBe(fingerprintOf({ list: [2, 1] }));
    expect(fingerprintOf({ a: { b: 1 } })).not.toBe(fingerprintOf({ a: 1, b: 1 }));
  });
});

describe('in-memory idempotency repository', () => {
  it('claims a new key, then replays its stored reply', () => {
    const { repo } = repository();
    expect(repo.begin('k1', 'f1')).toEqual({ kind: 'started' });
    expect(repo.begin('k1', 'f1')).toEqual({ kind: 'in_progress' });
    repo.complete('k1', reply);
    expect(repo.begin('k1', 'f1')).toEqual({ kind: 'replay', reply });
  });

  it('refuses a key reused with another fingerprint, in progress or done', () => {
    const { repo } = repository();
    repo.begin('k1', 'f1');
    expect(repo.begin('k1', 'f2')).toEqual({ kind: 'mismatch' });
    repo.complete('k1', reply);
    expect(repo.begin('k1', 'f2')).toEqual({ kind: 'mismatch' });
  });

  it('frees an abandoned key, but never a completed one', () => {
    const { repo } = repository();
    repo.begin('k1', 'f1');
    repo.abandon('k1');
    expect(repo.begin('k1', 'f2')).toEqual({ kind: 'started' });
    repo.complete('k1', reply);
    repo.abandon('k1');
    expect(repo.begin('k1', 'f1')).toEqual({ kind: 'mismatch' });
  });

  it('forgets keys after their TTL', () => {
    const { repo, advance } = repository({ ttlMs: 1000 });
    repo.begin('k1', 'f1');
    repo.complete('k1', reply);
    advance(999);
    expect(repo.begin('k1', 'f1').kind).toBe('replay');
    advance(1);
    expect(repo.begin('k1', 'f2')).toEqual({ kind: 'started' });
  });

  it('keeps at most maxKeys, dropping the oldest', () => {
    const { repo, advance } = repository({ maxKeys: 2 });
    for (const key of ['a', 'b', 'c']) {
      repo.begin(key, 'f');
      repo.complete(key, reply);
      advance(1);
    }
    expect(repo.size).toBe(2);
    expect(repo.begin('b', 'f').kind).toBe('replay');
    expect(repo.begin('c', 'f').kind).toBe('replay');
    expect(repo.begin('a', 'other').kind).toBe('started');
  });
});
