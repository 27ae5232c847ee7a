import type { Logger } from '@bazaar/logging';
import { Redis } from 'ioredis';

export interface RedisOptions {
  readonly url: string;
  /** Every command's deadline. */
  readonly commandTimeoutMs: number;
  readonly logger: Logger;
}

/**
 * A Redis client for a cache: every call fails fast instead of waiting for Redis. A command gets
 * `commandTimeoutMs`; while disconnected, commands fail at once (no offline queue) and the client
 * reconnects in the background. Callers treat every failure as a cache miss.
 */
export function createRedis(options: RedisOptions): Redis {
  const redis = new Redis(options.url, {
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: Math.max(500, options.commandTimeoutMs * 5),
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    // Reconnect quickly at first, then every second; never give up (Redis comes back).
    retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
    lazyConnect: false,
  });
  let isDown = false;
  redis.on('error', (error: unknown) => {
    if (isDown) return;
    isDown = true;
    options.logger.warn({ err: error }, 'redis unavailable; serving from PostgreSQL');
  });
  redis.on('ready', () => {
    if (!isDown) return;
    isDown = false;
    options.logger.info('redis available again');
  });
  return redis;
}
