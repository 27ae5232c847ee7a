import type { Logger } from '@bazaar/logging';
import type { Meter } from '@opentelemetry/api';
import type pg from 'pg';
import { RecipientUnknownError } from './errors';
import type { MailReconciler } from './mail-reconciler';
import { MailSendError, type Mailer } from './mailer';
import { decideAfterFailure, isWanted, type BackoffPolicy } from './notification';
import {
  claimDueDeliveries,
  countOpenDeliveries,
  findPreferences,
  finishDeliveryUnsent,
  markDeliverySent,
  scheduleDeliveryRetry,
  type ClaimedDelivery,
} from './notification.repository';
import type { RecipientDirectory } from './recipient-directory';
import type { Templates } from './templates';

export interface DispatcherOptions {
  readonly pool: pg.Pool;
  readonly mailer: Mailer;
  readonly templates: Templates;
  readonly recipients: RecipientDirectory;
  /** Looks up in-doubt attempts before resending; without one they are resent (ADR 0005). */
  readonly reconciler?: MailReconciler;
  readonly logger: Logger;
  readonly meter: Meter;
  readonly batchSize: number;
  readonly pollMs: number;
  readonly leaseMs: number;
  readonly maxAttempts: number;
  readonly backoff: BackoffPolicy;
  /** Test hook: runs after the relay accepted a message and before it is recorded as sent. */
  readonly afterSend?: (delivery: ClaimedDelivery) => void;
}

export interface DeliveryDispatcher {
  /** Runs a round now instead of at the next poll (new deliveries were committed). */
  wake(): void;
  /** One claim-and-send round; resolves with the number of deliveries it handled. */
  runOnce(): Promise<number>;
  stop(): Promise<void>;
}

type Outcome = 'sent' | 'reconciled' | 'retry' | 'dead' | 'suppressed';

class ReconcileError extends Error {
  override readonly name = 'ReconcileError';
}

/** `Name: message (Cause: message)`, for the delivery log's last error. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause =
    error.cause instanceof Error ? ` (${error.cause.name}: ${error.cause.message})` : '';
  return `${error.name}: ${error.message}${cause}`;
}

/**
 * Sends the deliveries recorded by the consumer and the alert webhook: claim (lease committed
 * first), reconcile an in-doubt attempt, resolve the address, render, send, record. See ADR 0005.
 */
export function startDeliveryDispatcher(options: DispatcherOptions): DeliveryDispatcher {
  const { pool, logger } = options;
  const outcomes = options.meter.createCounter('notifications.emails', {
    description: 'Email delivery attempts by outcome',
  });
  const backlog = options.meter.createObservableGauge('notifications.deliveries.open', {
    description: 'Deliveries pending or in flight',
  });
  let openCount = 0;
  backlog.addCallback((result) => result.observe(openCount));

  let isStopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let isWakeRequested = false;

  async function deliver(delivery: ClaimedDelivery): Promise<Outcome> {
    const attempt = delivery.attempts;
    try {
      if ((delivery.wasInFlight || delivery.isInDoubt) && options.reconciler !== undefined) {
        // An earlier attempt may have reached the relay (its instance died before recording, or
        // the connection broke during DATA): find out before sending again.
        let isAtRelay: boolean;
        try {
          isAtRelay = await options.reconciler.hasMessage(delivery.messageId);
        } catch (error) {
          throw new ReconcileError('could not ask the relay about an earlier attempt', {
            cause: error,
          });
        }
        if (isAtRelay) {
          await markDeliverySent(pool, delivery.id, attempt, 'reconciled', delivery.toAddress);
          logger.info(
            { deliveryId: delivery.id, wasInFlight: delivery.wasInFlight },
            'delivery found at the relay; recorded without resending',
          );
          return 'reconciled';
        }
      }
      let to = delivery.toAddress;
      let name = 'operators';
      if (delivery.userId !== null) {
        if (!isWanted(delivery.category, await findPreferences(pool, delivery.userId))) {
          await finishDeliveryUnsent(pool, delivery.id, attempt, 'suppressed', 'opted out');
          return 'suppressed';
        }
        const recipient = await options.recipients.lookup(delivery.userId);
        to = recipient.email;
        name = recipient.name;
      }
      if (to === null) throw new RecipientUnknownError('the delivery has no address');
      const message = options.templates.renderEmail(delivery.template, {
        ...delivery.params,
        recipient: { name },
      });
      await options.mailer.send({ ...message, to, messageId: delivery.messageId });
      options.afterSend?.(delivery);
      await markDeliverySent(pool, delivery.id, attempt, 'accepted', to);
      return 'sent';
    } catch (error) {
      const isPermanent =
        error instanceof RecipientUnknownError ||
        (error instanceof MailSendError && error.isPermanent);
      // Only a send that failed once the relay may have taken the message adds doubt; any other
      // failure keeps the doubt the delivery already had (the update ORs it in).
      const isInDoubt = error instanceof MailSendError && error.isMaybeDelivered;
      const reason = describe(error);
      const decision = decideAfterFailure(
        attempt,
        isPermanent,
        options.maxAttempts,
        options.backoff,
      );
      if (decision.action === 'dead') {
        await finishDeliveryUnsent(pool, delivery.id, attempt, 'dead', reason, isInDoubt);
        logger.error(
          { deliveryId: delivery.id, attempts: attempt, template: delivery.template, reason },
          'delivery dead-lettered',
        );
        return 'dead';
      }
      await scheduleDeliveryRetry(pool, delivery.id, attempt, decision.delayMs, reason, isInDoubt);
      logger.warn(
        { deliveryId: delivery.id, attempt, retryInMs: decision.delayMs, reason },
        'delivery failed; retrying later',
      );
      return 'retry';
    }
  }

  async function runOnce(): Promise<number> {
    const claimed = await claimDueDeliveries(pool, options.batchSize, options.leaseMs);
    const results = await Promise.allSettled(claimed.map(deliver));
    for (const [index, result] of results.entries()) {
      if (result.status === 'fulfilled') {
        outcomes.add(1, { outcome: result.value, template: claimed[index]?.template ?? '' });
      } else {
        // Recording the outcome failed (PostgreSQL): the lease expires and the row is retried,
        // reconciled first.
        logger.error(
          { err: result.reason, deliveryId: claimed[index]?.id },
          'delivery round failed',
        );
      }
    }
    openCount = await countOpenDeliveries(pool).catch(() => openCount);
    return claimed.length;
  }

  function schedule(delayMs: number) {
    if (isStopped) return;
    clearTimeout(timer);
    timer = setTimeout(loop, delayMs);
  }

  function loop() {
    if (isStopped || running !== undefined) {
      isWakeRequested = true;
      return;
    }
    isWakeRequested = false;
    running = runOnce();
    running
      .then(
        // A full batch means more may be due: go again at once.
        (count) => schedule(count >= options.batchSize || isWakeRequested ? 0 : options.pollMs),
        (error: unknown) => {
          logger.warn({ err: error }, 'delivery dispatcher round failed');
          schedule(options.pollMs);
        },
      )
      .finally(() => {
        running = undefined;
      });
  }

  schedule(0);

  return {
    wake() {
      if (running !== undefined) isWakeRequested = true;
      else schedule(0);
    },
    runOnce,
    async stop() {
      isStopped = true;
      clearTimeout(timer);
      await running?.catch(() => undefined);
    },
  };
}
