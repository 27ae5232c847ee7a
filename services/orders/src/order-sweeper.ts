import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@bazaar/logging';
import type { OrderService } from './order.service';

/** A background loop; `stop()` resolves once the round in flight is finished. */
export interface Loop {
  stop(): Promise<void>;
}

function startLoop(
  name: string,
  intervalMs: number,
  logger: Logger,
  round: () => Promise<void>,
): Loop {
  const stopping = new AbortController();
  const running = (async () => {
    while (!stopping.signal.aborted) {
      try {
        await round();
      } catch (error) {
        if (!stopping.signal.aborted) logger.warn({ err: error, loop: name }, 'round failed');
      }
      await sleep(intervalMs, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  })();
  return {
    async stop() {
      stopping.abort();
      await running;
    },
  };
}

/**
 * Cancels PENDING orders past their deadline (PAYMENT_TIMEOUT). Every instance runs it; the order
 * lock and the state machine make two instances cancelling one order harmless.
 */
export function startDeadlineSweeper(
  orders: OrderService,
  intervalMs: number,
  logger: Logger,
): Loop {
  return startLoop('deadline sweeper', intervalMs, logger, async () => {
    while ((await orders.expireDue(100)) === 100) {
      // A full page: more are due, go on without waiting.
    }
  });
}

/** Resolves stale reservations and deletes expired idempotency keys. */
export function startJanitor(orders: OrderService, intervalMs: number, logger: Logger): Loop {
  return startLoop('janitor', intervalMs, logger, async () => {
    const result = await orders.tidy();
    if (result.released + result.settled + result.keysDeleted > 0) logger.info(result, 'tidied');
  });
}
