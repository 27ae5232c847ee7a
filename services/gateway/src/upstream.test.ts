import { describe, expect, it } from 'vitest';
import { Upstream } from './upstream';

const instances = ['a', 'b', 'c'].map((id) => ({ id, address: `http://${id}` }));

function upstream(algorithm: 'round-robin' | 'least-connections' = 'round-robin') {
  let now = 1000;
  const pool = new Upstream({
    algorithm,
    ejectAfterFailures: 2,
    ejectCooldownMs: 5000,
    breakerFailures: 3,
    breakerOpenMs: 10_000,
    now: () => now,
  });
  pool.setInstances(instances);
  return { pool, advance: (ms: number) => (now += ms) };
}

describe('Upstream', () => {
  it('round-robins and skips excluded targets', () => {
    const { pool } = upstream();
    expect([pool.pick(), pool.pick(), pool.pick(), pool.pick()].map((t) => t?.id)).toEqual([
      'a',
      'b',
      'c',
      'a',
    ]);
    expect(pool.pick(new Set(['a', 'b', 'c']))).toBeUndefined();
    expect(pool.pick(new Set(['a', 'c']))?.id).toBe('b');
  });

  it('prefers the target with the fewest outstanding requests', () => {
    const { pool } = upstream('least-connections');
    const [a, b] = pool.targets();
    if (a === undefined || b === undefined) throw new Error('targets missing');
    a.outstanding = 3;
    b.outstanding = 1;
    expect(pool.pick()?.id).toBe('c');
    pool.targets()[2]!.outstanding = 5;
    expect(pool.pick()?.id).toBe('b');
  });

  it('ejects a target after consecutive failures for the cooldown, keeping health across updates', () => {
    const { pool, advance } = upstream();
    const b = pool.targets()[1]!;
    pool.recordAttempt(b, false);
    pool.recordAttempt(b, true);
    pool.recordAttempt(b, false);
    expect(b.ejectedUntil).toBe(0);
    pool.recordAttempt(b, false);
    pool.setInstances(instances);
    const picked = Array.from({ length: 6 }, () => pool.pick()?.id);
    expect(picked).not.toContain('b');
    advance(5000);
    expect(Array.from({ length: 3 }, () => pool.pick()?.id)).toContain('b');
  });

  it('still answers with an ejected target when every target is ejected', () => {
    const { pool } = upstream();
    for (const target of pool.targets()) {
      pool.recordAttempt(target, false);
      pool.recordAttempt(target, false);
    }
    expect(pool.pick()).toBeDefined();
  });

  it('opens the breaker after consecutive failed exchanges, then allows one trial that recloses it', () => {
    const { pool, advance } = upstream();
    for (let i = 0; i < 3; i++) pool.recordExchange(false, false);
    expect(pool.breakerState()).toBe('open');
    expect(pool.admit()).toEqual({ allowed: false, retryAfterSeconds: 10 });
    advance(10_000);
    const trial = pool.admit();
    expect(trial).toEqual({ allowed: true, isTrial: true });
    expect(pool.admit()).toMatchObject({ allowed: false });
    pool.recordExchange(false, true);
    expect(pool.breakerState()).toBe('open');
    advance(10_000);
    expect(pool.admit()).toEqual({ allowed: true, isTrial: true });
    pool.recordExchange(true, true);
    expect(pool.breakerState()).toBe('closed');
    expect(pool.admit()).toEqual({ allowed: true, isTrial: false });
  });

  it('leaves the breaker alone for exchanges abandoned by their client, freeing a trial slot', () => {
    const { pool, advance } = upstream();
    for (let i = 0; i < 10; i++) pool.abandonExchange(false);
    expect(pool.breakerState()).toBe('closed');
    for (let i = 0; i < 3; i++) pool.recordExchange(false, false);
    advance(10_000);
    expect(pool.admit()).toEqual({ allowed: true, isTrial: true });
    pool.abandonExchange(true);
    expect(pool.admit()).toEqual({ allowed: true, isTrial: true });
  });
});
