import type { Logger } from '@bazaar/logging';
import type { PaymentService } from './payment.service';

export interface Sweeper {
  stop(): Promise<void>;
}

/**
 * Periodically voids authorizations whose order is cancelled — the ones a race (cancellation during
 * the processor call) or a crash (between the authorization's commit and its void) left behind.
 * Safe on every instance at once: voids are idempotent at the processor and guarded by row locks.
 */
export function startVoidSweeper(options: {
  readonly service: Pick<PaymentService, 'voidCancelledAuthorizations'>;
  readonly intervalMs: number;
  readonly logger: Logger;
}): Sweeper {
  const { service, intervalMs, logger } = options;
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running
      .then(() => service.voidCancelledAuthorizations())
      .then((voided) => {
        if (voided > 0) logger.info({ voided }, 'voided authorizations of cancelled orders');
      })
      .catch((error: unknown) => logger.warn({ err: error }, 'void sweep failed'));
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
