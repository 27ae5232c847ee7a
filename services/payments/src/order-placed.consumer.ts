import type { EventTypes } from '@bazaar/contracts';
import type { Consumer, EventBus } from '@bazaar/event-bus';
import { consumerGroups, type PaymentService } from './payment.service';

/**
 * order.placed.v1 → authorize. A delivery whose processor outcome stayed unknown throws, so the bus
 * redelivers it after a short delay and the retry reuses the processor Idempotency-Key; the service
 * fails the payment (PROCESSOR_UNAVAILABLE) on the last attempt, so orders never wait on a dead
 * processor for longer than these delays.
 */
export function startOrderPlacedConsumer(
  bus: Pick<EventBus, 'consume'>,
  service: Pick<PaymentService, 'authorizeOrder'>,
  options: {
    readonly prefetch: number;
    /** Default `payments.order-placed`. */
    readonly group?: string;
    readonly maxAttempts: number;
  },
): Promise<Consumer> {
  return bus.consume<EventTypes>({
    group: options.group ?? consumerGroups.orderPlaced,
    prefetch: options.prefetch,
    retry: { delaysMs: [1000, 2000, 4000], maxAttempts: options.maxAttempts },
    handlers: {
      'order.placed.v1': (event, delivery) => service.authorizeOrder(event, delivery),
    },
  });
}
