import { AppError } from '@bazaar/errors';
import type { Redis } from 'ioredis';
import type { PluginConfig } from './declarative';

// GCRA (generic cell rate algorithm) over every window of a rule at once: each window keeps one
// "theoretical arrival time" per key. A request is allowed only if every window allows it, and only
// then are the windows advanced, so a refused request costs nothing. Redis' own clock is used, so
// any number of gateway instances share one limit. Replies: allowed, limit, remaining, reset (s),
// retry after (s) — for the tightest window.
const GCRA_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local newTats = {}
local bestRemaining = -1
local bestLimit = 0
local bestReset = 0
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local interval = period / limit
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local newTat = tat + interval
  local allowAt = newTat - period
  if now < allowAt then
    return {0, limit, 0, math.ceil((tat - now) / 1000), math.ceil((allowAt - now) / 1000)}
  end
  newTats[i] = newTat
  local remaining = math.floor((period - (newTat - now)) / interval)
  if bestRemaining < 0 or remaining < bestRemaining then
    bestRemaining = remaining
    bestLimit = limit
    bestReset = math.ceil((newTat - now) / 1000)
  end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], tostring(newTats[i]), 'PX', math.ceil(newTats[i] - now))
end
return {1, bestLimit, bestRemaining, bestReset, 0}
`;

type GcraRedis = Redis & {
  gatewayGcra(...args: (string | number)[]): Promise<[number, number, number, number, number]>;
};

/** The verdict of one check, with what the `RateLimit-*` headers say. */
export interface RateLimitVerdict {
  readonly limit: number;
  readonly remaining: number;
  readonly resetSeconds: number;
}

export type CheckRateLimit = (
  rule: string,
  config: PluginConfig<'rate-limiting'>,
  key: string,
) => Promise<RateLimitVerdict | undefined>;

/** Fault-tolerance log (a pino logger fits). */
interface WarnLogger {
  warn(object: object, message: string): void;
}

/**
 * A Redis-backed rate limiter. Returns the verdict for an allowed request (for the headers), throws
 * RATE_LIMITED with `Retry-After` for a refused one, and returns undefined when Redis cannot answer
 * and the rule is fault tolerant.
 */
export function createRateLimiter(redis: Redis, logger: WarnLogger): CheckRateLimit {
  redis.defineCommand('gatewayGcra', { lua: GCRA_SCRIPT });
  const gcra = redis as GcraRedis;
  return async (rule, config, key) => {
    const windows: [string, number, number][] = [];
    if (config.second !== undefined) windows.push(['s', config.second, 1000]);
    if (config.minute !== undefined) windows.push(['m', config.minute, 60_000]);
    if (config.hour !== undefined) windows.push(['h', config.hour, 3_600_000]);
    const keys = windows.map(([unit]) => `gateway:rl:${rule}:${unit}:${key}`);
    const args = windows.flatMap(([, limit, period]) => [limit, period]);
    let reply: [number, number, number, number, number];
    try {
      reply = await gcra.gatewayGcra(keys.length, ...keys, ...args);
    } catch (error) {
      if (!config.fault_tolerant) {
        throw new AppError('SERVICE_UNAVAILABLE', 'Rate limiting is unavailable.', {
          cause: error,
        });
      }
      logger.warn({ err: error, rule }, 'rate limiter unavailable; letting the request through');
      return undefined;
    }
    const [allowed, limit, remaining, resetSeconds, retryAfterSeconds] = reply;
    if (allowed === 1) return { limit, remaining, resetSeconds };
    throw new AppError('RATE_LIMITED', 'Too many requests; retry later.', {
      retryAfterSeconds: Math.max(1, retryAfterSeconds),
      details: { limit, remaining: 0, resetSeconds },
    });
  };
}
