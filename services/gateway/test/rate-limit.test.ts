import { randomUUID } from 'node:crypto';
import { isAppError } from '@bazaar/errors';
import { freePort } from '@bazaar/stack';
import { testStack } from '@bazaar/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PluginConfig } from '../src/declarative';
import {
  createRateLimiter,
  MAX_CHECKS_PER_CALL,
  type RateLimiter,
  type RateLimitVerdict,
} from '../src/rate-limit.plugin';

// The limiter against the test stack's real Redis: checks made in one event-loop turn are decided
// by one script call, and the outcome is exactly that of the same checks made one by one.

type Outcome = { allowed: true; verdict: RateLimitVerdict | undefined } | { allowed: false };

const rule = (config: Partial<PluginConfig<'rate-limiting'>>): PluginConfig<'rate-limiting'> => ({
  limit_by: 'ip',
  policy: 'redis',
  fault_tolerant: true,
  ...config,
});

async function outcomeOf(check: Promise<RateLimitVerdict | undefined>): Promise<Outcome> {
  try {
    return { allowed: true, verdict: await check };
  } catch (error) {
    if (isAppError(error, 'RATE_LIMITED') && (error.retryAfterSeconds ?? 0) >= 1) {
      return { allowed: false };
    }
    throw error;
  }
}

const remainingOf = (outcomes: readonly Outcome[]) =>
  outcomes.flatMap((outcome) => (outcome.allowed ? [outcome.verdict?.remaining] : []));

const noLog = { warn: () => undefined };

describe('rate limiter batching (Redis)', () => {
  // Two clients and two limiters: two gateway instances sharing one Redis.
  let clients: Redis[];
  let limiters: RateLimiter[];
  let monitor: Redis;
  // Every EVAL/EVALSHA seen by Redis, as its arguments.
  const calls: string[][] = [];

  /** Waits until Redis has processed everything sent before (MONITOR reports in order). */
  async function barrier(): Promise<void> {
    const marker = `gateway-test-marker-${randomUUID()}`;
    const seenMarker = new Promise<void>((resolve) => {
      const onCommand = (_time: string, args: string[]) => {
        if (args[1] === marker) {
          monitor.off('monitor', onCommand);
          resolve();
        }
      };
      monitor.on('monitor', onCommand);
    });
    await clients[0]?.get(marker);
    await seenMarker;
  }

  /** Script calls that decided checks of `ruleName` since `since`. */
  const callsFor = (ruleName: string, since: number) =>
    calls
      .slice(since)
      .filter((args) => args.some((arg) => arg.startsWith(`gateway:rl:${ruleName}:`)));

  beforeAll(async () => {
    clients = [new Redis(testStack().redis), new Redis(testStack().redis)];
    limiters = clients.map((client) => createRateLimiter(client, noLog));
    monitor = await new Redis(testStack().redis).monitor();
    monitor.on('monitor', (_time: string, args: string[]) => {
      const command = args[0]?.toLowerCase();
      if (command === 'evalsha' || command === 'eval') calls.push(args);
    });
    // Loads the script into Redis, so each batch below is exactly one EVALSHA.
    for (const limiter of limiters) {
      await limiter.forRule(`warm-${randomUUID()}`, rule({ minute: 1 }))('ip:127.0.0.1');
    }
  });

  afterAll(() => {
    monitor?.disconnect();
    for (const client of clients ?? []) client.disconnect();
  });

  it('decides one turn of concurrent checks in one call per instance, and the limit is exact across both', async () => {
    const name = `burst-${randomUUID().slice(0, 8)}`;
    const since = calls.length;
    const checks = limiters.map((limiter) => limiter.forRule(name, rule({ minute: 20 })));
    // 30 checks on each instance, all made in one turn.
    const pending = Array.from({ length: 60 }, (_, i) => checks[i % 2]?.('ip:10.0.0.1'));
    const outcomes = await Promise.all(pending.map((check) => outcomeOf(check as never)));
    await barrier();

    expect(callsFor(name, since)).toHaveLength(2);
    expect(outcomes.filter((outcome) => outcome.allowed)).toHaveLength(20);
    // Each allowed check saw the limit as the previous one left it: 19 … 0, each once.
    expect(remainingOf(outcomes).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
    // The limit holds afterwards too, on either instance.
    expect(await outcomeOf(checks[0]?.('ip:10.0.0.1') as never)).toEqual({ allowed: false });
    expect(await outcomeOf(checks[1]?.('ip:10.0.0.1') as never)).toEqual({ allowed: false });
  });

  it('keeps clients of one call apart, and a refused check advances no window', async () => {
    const name = `windows-${randomUUID().slice(0, 8)}`;
    const check = limiters[0]?.forRule(name, rule({ minute: 3, hour: 100 }));
    if (check === undefined) throw new Error('no limiter');
    const keys = ['ip:10.0.0.2', 'ip:10.0.0.3', 'ip:10.0.0.2', 'ip:10.0.0.3', 'ip:10.0.0.2'];
    const all = [...keys, ...keys];
    const outcomes = await Promise.all(all.map((key) => outcomeOf(check(key))));
    const byKey = (key: string) => outcomes.filter((_, i) => all[i] === key);
    // 6 checks of each client: the minute window (3) allows 3, refuses 3.
    expect(byKey('ip:10.0.0.2').map((outcome) => outcome.allowed)).toEqual([
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
    expect(remainingOf(byKey('ip:10.0.0.3'))).toEqual([2, 1, 0]);
    // Both windows' arrival times after 3 allowed checks: now + 3 × 20 s and now + 3 × 36 s.
    // Had the 3 refused checks advanced the hour window, the gap would be 6 × 36 s − 60 s.
    const stored = await clients[0]?.get(`gateway:rl:${name}:mh:ip:10.0.0.2`);
    const [minuteTat, hourTat] = (stored ?? '').split(' ').map(Number);
    expect((hourTat ?? 0) - (minuteTat ?? 0)).toBe(3 * 36_000 - 3 * 20_000);
  });

  it(`splits a turn of more than ${MAX_CHECKS_PER_CALL} checks into several calls, still exact`, async () => {
    const name = `many-${randomUUID().slice(0, 8)}`;
    const since = calls.length;
    // One window of 3.6 s per request: the calls a few ms apart see no refill in between.
    const check = limiters[0]?.forRule(name, rule({ hour: 1000 }));
    if (check === undefined) throw new Error('no limiter');
    const count = MAX_CHECKS_PER_CALL + 44;
    const outcomes = await Promise.all(
      Array.from({ length: count }, () => outcomeOf(check('ip:10.0.0.4'))),
    );
    await barrier();
    expect(callsFor(name, since)).toHaveLength(2);
    expect(remainingOf(outcomes).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(
      Array.from({ length: count }, (_, i) => 1000 - count + i),
    );
  });

  it('makes the checks of later turns wait for the call in flight, then sends them in one call', async () => {
    const name = `queued-${randomUUID().slice(0, 8)}`;
    const since = calls.length;
    const check = limiters[0]?.forRule(name, rule({ minute: 100 }));
    const admin = clients[1];
    if (check === undefined || admin === undefined) throw new Error('no limiter');
    // Redis holds back writing commands (the script) until unpaused: the first call stays in
    // flight for as long as the test needs, whatever the machine's speed.
    await admin.call('CLIENT', 'PAUSE', '30000', 'WRITE');
    const checks: Promise<Outcome>[] = [];
    try {
      checks.push(outcomeOf(check('ip:10.0.0.7')), outcomeOf(check('ip:10.0.0.7')));
      await new Promise((resolve) => setImmediate(resolve)); // the first call is sent
      for (let turn = 0; turn < 10; turn++) {
        checks.push(outcomeOf(check('ip:10.0.0.7')));
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      await admin.call('CLIENT', 'UNPAUSE');
    }
    const outcomes = await Promise.all(checks);
    await barrier();
    // Without the wait, each of the 10 later turns would have made a call of its own.
    expect(callsFor(name, since)).toHaveLength(2);
    expect(remainingOf(outcomes)).toEqual(Array.from({ length: 12 }, (_, i) => 99 - i));
  });

  it('lets requests through when Redis cannot answer (fault tolerant), refuses otherwise, and logs once per call', async () => {
    // A port nobody listens on; no offline queue, so every command fails at once.
    const unreachable = new Redis(`redis://127.0.0.1:${await freePort()}`, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    const warnings: object[] = [];
    const limiter = createRateLimiter(unreachable, { warn: (fields) => warnings.push(fields) });
    const tolerant = limiter.forRule('down-tolerant', rule({ second: 1 }));
    const strict = limiter.forRule('down-strict', rule({ second: 1, fault_tolerant: false }));
    const results = await Promise.allSettled([
      tolerant('ip:10.0.0.5'),
      tolerant('ip:10.0.0.6'),
      strict('ip:10.0.0.5'),
    ]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: undefined });
    expect(results[1]).toEqual({ status: 'fulfilled', value: undefined });
    expect(results[2]?.status).toBe('rejected');
    expect(isAppError((results[2] as PromiseRejectedResult).reason, 'SERVICE_UNAVAILABLE')).toBe(
      true,
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ rules: ['down-tolerant'], checks: 3 });
    unreachable.disconnect();
  });
});
