import type { EventTypes } from '@bazaar/contracts';
import { handleOnce, type Consumer, type EventBus } from '@bazaar/event-bus';
import type { Logger } from '@bazaar/logging';
import type pg from 'pg';
import type { HandledEvent } from './notification';
import type { NotificationService } from './notification.service';

export interface EventsConsumerDeps {
  readonly bus: EventBus;
  readonly pool: pg.Pool;
  readonly group: string;
  readonly notifications: NotificationService;
  readonly logger: Logger;
  /** New deliveries committed: wake the dispatcher. */
  readonly onRecorded: () => void;
}

/**
 * One consumer group for every event that becomes a message. Each event is applied once per event
 * id (handleOnce: the id is recorded in the same transaction as the inbox entry and the delivery
 * intent); the message is acked only after that commit, and the email is sent afterwards by the
 * dispatcher — an SMTP outage never holds or fails a message. An invalid event is dead-lettered by
 * the bus before it reaches a handler; a handler failure (PostgreSQL down) is retried, then
 * dead-lettered.
 */
export async function startEventsConsumer(deps: EventsConsumerDeps): Promise<Consumer> {
  const { bus, pool, group, notifications, logger } = deps;
  const apply = async (event: HandledEvent) => {
    const result = await handleOnce(pool, group, event.id, (tx) =>
      notifications.recordEvent(tx, event),
    );
    if (result === 'processed') deps.onRecorded();
    else logger.debug({ eventId: event.id, type: event.type }, 'duplicate event ignored');
  };
  return bus.consume<EventTypes>({
    group,
    handlers: {
      'user.registered.v1': apply,
      'order.confirmed.v1': apply,
      'order.cancelled.v1': apply,
      'payment.refunded.v1': apply,
    },
  });
}
