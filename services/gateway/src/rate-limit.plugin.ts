import { AppError } from '@bazaar/errors';
import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import type { Redis } from 'ioredis';
import type { PluginConfig } from './declarative';

// GCRA (generic cell rate algorithm) over every window of a rule at once: each window keeps one
// "theoretical arrival time" (TAT) per client. A request is allowed only if every window allows
// it, and only then are the windows advanced, so a refused request costs nothing. Redis' own clock
// is used, so any number of gateway instances share one limit.
//
// One call decides a whole batch of checks, one after the other, exactly as the same checks sent
// as separate calls back to back would be decided (each reads the TATs the previous one wrote;
// Redis runs a script atomically, so no other instance's check interleaves). Per check, KEYS holds
// one key (the rule's TATs for one client, space-separated, in window order: one GET and one SET
// instead of one each per window) and ARGV its number of windows n followed by n (limit, period
// ms) pairs. Reply: per check allowed, limit, remaining, reset (s), retry after (s) — for the
// tightest window (the refusing one when refused).
const GCRA_BATCH_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local k = 1
local a = 1
local argc = #ARGV
while a <= argc do
  local n = tonumber(ARGV[a])
  a = a + 1
  local tats = {}
  local stored = redis.call('GET', KEYS[k])
  if stored then
    local i = 1
    for value in string.gmatch(stored, '[^ ]+') do
      tats[i] = tonumber(value)
      i = i + 1
    end
  end
  local newTats = {}
  local refused = nil
  local bestRemaining = -1
  local bestLimit = 0
  local bestReset = 0
  local ttl = 0
  for i = 1, n do
    local limit = tonumber(ARGV[a + 2 * i - 2])
    local period = tonumber(ARGV[a + 2 * i - 1])
    local interval = period / limit
    local tat = tats[i] or now
    if tat < now then tat = now end
    local newTat = tat + interval
    local allowAt = newTat - period
    if now < allowAt then
      refused = {0, limit, 0, math.ceil((tat - now) / 1000), math.ceil((allowAt - now) / 1000)}
      break
    end
    newTats[i] = newTat
    if newTat - now > ttl then ttl = newTat - now end
    local remaining = math.floor((period - (newTat - now)) / interval)
    if bestRemaining < 0 or remaining < bestRemaining then
      bestRemaining = remaining
      bestLimit = limit
      bestReset = math.ceil((newTat - now) / 1000)
    end
  end
  if refused then
    for j = 1, 5 do out[#out + 1] = refused[j] end
  else
    -- Kept until the last window's TAT has passed (then every window is back to full).
    redis.call('SET', KEYS[k], table.concat(newTats, ' '), 'PX', math.ceil(ttl))
    out[#out + 1] = 1
    out[#out + 1] = bestLimit
    out[#out + 1] = bestRemaining
    out[#out + 1] = bestReset
    out[#out + 1] = 0
  end
  k = k + 1
  a = a + 2 * n
end
return out
`;

/** The most checks decided by one script call; more in one event-loop turn go in further calls. */
export const MAX_CHECKS_PER_CALL = 256;

type GcraRedis = Redis & {
  gatewayGcraBatch(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number[]>;
};

/** The verdict of one check, with what the `RateLimit-*` headers say. */
export interface RateLimitVerdict {
  readonly limit: number;
  readonly remaining: number;
  readonly resetSeconds: number;
}

/**
 * Checks one request of a client (`key`: `c:<consumer>` or `ip:<address>`) against a rule.
 * Resolves with the verdict of an allowed request (for the headers), rejects with RATE_LIMITED
 * (`Retry-After`) for a refused one, and resolves undefined when Redis cannot answer and the rule
 * is fault tolerant.
 */
export type CheckRateLimit = (key: string) => Promise<RateLimitVerdict | undefined>;

export interface RateLimiter {
  /** The check of one rule (a route's `rate-limiting` config), prepared once at start. */
  forRule(rule: string, config: PluginConfig<'rate-limiting'>): CheckRateLimit;
}

/** Fault-tolerance log (a pino logger fits). */
interface WarnLogger {
  warn(object: object, message: string): void;
}

interface PreparedRule {
  readonly rule: string;
  readonly config: PluginConfig<'rate-limiting'>;
  /**
   * `gateway:rl:<rule>:<windows>:` (windows: `s`, `m`, `h` in order, e.g. `sm`); the client key
   * completes it. The windows are in the key because its value lists one TAT per window: a rule
   * that gains or loses a window starts afresh instead of reading another window's TAT.
   */
  readonly keyPrefix: string;
  /** This rule's part of ARGV: window count, then (limit, period) per window. */
  readonly args: readonly number[];
}

interface PendingCheck {
  readonly rule: PreparedRule;
  readonly key: string;
  readonly resolve: (verdict: RateLimitVerdict | undefined) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * A Redis-backed rate limiter. The checks made during one event-loop turn (the requests of every
 * connection that had data), and those made while the previous call is in flight, are sent
 * together as one script call decided wholly in Redis: the limit stays exact across gateway
 * instances, and a busy gateway pays one command (one write, one reply, one command timer) per
 * batch instead of one per request.
 */
export function createRateLimiter(redis: Redis, logger: WarnLogger): RateLimiter {
  redis.defineCommand('gatewayGcraBatch', { lua: GCRA_BATCH_SCRIPT });
  const gcra = redis as GcraRedis;
  let pending: PendingCheck[] = [];
  let isScheduled = false;
  let inFlight = 0;

  function settle(batch: readonly PendingCheck[], reply: readonly number[]): void {
    for (const [index, check] of batch.entries()) {
      const at = index * 5;
      const limit = reply[at + 1] ?? 0;
      const resetSeconds = reply[at + 3] ?? 0;
      if (reply[at] === 1) {
        check.resolve({ limit, remaining: reply[at + 2] ?? 0, resetSeconds });
      } else {
        check.reject(
          new AppError('RATE_LIMITED', 'Too many requests; retry later.', {
            retryAfterSeconds: Math.max(1, reply[at + 4] ?? 1),
            details: { limit, remaining: 0, resetSeconds },
          }),
        );
      }
    }
  }

  function fail(batch: readonly PendingCheck[], error: unknown): void {
    const letThrough = new Set<string>();
    for (const check of batch) {
      if (check.rule.config.fault_tolerant) {
        letThrough.add(check.rule.rule);
        check.resolve(undefined);
      } else {
        check.reject(
          new AppError('SERVICE_UNAVAILABLE', 'Rate limiting is unavailable.', { cause: error }),
        );
      }
    }
    // Once per call, not per request: an outage under load must not flood the log.
    if (letThrough.size > 0) {
      logger.warn(
        { err: error, rules: [...letThrough], checks: batch.length },
        'rate limiter unavailable; letting the requests through',
      );
    }
  }

  function send(batch: readonly PendingCheck[]): void {
    const keys: string[] = [];
    const args: number[] = [];
    for (const { rule, key } of batch) {
      keys.push(rule.keyPrefix + key);
      for (const arg of rule.args) args.push(arg);
    }
    // Outside any request's trace: the call serves many requests, and with the Redis
    // instrumentation's requireParentSpan it makes no span (one per request would cost more than
    // the check itself).
    inFlight += 1;
    context.with(ROOT_CONTEXT, () => {
      gcra.gatewayGcraBatch(keys.length, ...keys, ...args).then(
        (reply) => {
          inFlight -= 1;
          settle(batch, reply);
          schedule();
        },
        (error: unknown) => {
          inFlight -= 1;
          fail(batch, error);
          schedule();
        },
      );
    });
  }

  /**
   * Sends the waiting checks once this turn's I/O callbacks have run (every request parsed in it
   * joins) — unless a call is still in flight: then they wait for its reply and go together in
   * the next call. Under load, calls grow with the load instead of multiplying (group commit),
   * so Redis and the gateway pay a few calls per round trip, not one per turn. A check waits at
   * most one call longer (each call is bounded by the client's command timeout).
   */
  function schedule(): void {
    if (isScheduled || inFlight > 0 || pending.length === 0) return;
    isScheduled = true;
    setImmediate(flush);
  }

  function flush(): void {
    isScheduled = false;
    const batch = pending;
    pending = [];
    for (let start = 0; start < batch.length; start += MAX_CHECKS_PER_CALL) {
      send(
        batch.length <= MAX_CHECKS_PER_CALL
          ? batch
          : batch.slice(start, start + MAX_CHECKS_PER_CALL),
      );
    }
  }

  return {
    forRule(rule, config) {
      const windows: [string, number, number][] = [];
      if (config.second !== undefined) windows.push(['s', config.second, 1000]);
      if (config.minute !== undefined) windows.push(['m', config.minute, 60_000]);
      if (config.hour !== undefined) windows.push(['h', config.hour, 3_600_000]);
      const prepared: PreparedRule = {
        rule,
        config,
        keyPrefix: `gateway:rl:${rule}:${windows.map(([unit]) => unit).join('')}:`,
        args: [windows.length, ...windows.flatMap(([, limit, period]) => [limit, period])],
      };
      return (key) =>
        new Promise((resolve, reject) => {
          pending.push({ rule: prepared, key, resolve, reject });
          schedule();
        });
    },
  };
}
