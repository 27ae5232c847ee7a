import type { EventTypes } from '@bazaar/contracts';
import type { Consumer, EventBus } from '@bazaar/event-bus';
import { consumerGroups, type PaymentService } from './payment.service';

/**
 * order.confirmed.v1 → capture. A capture must happen eventually, so failures are retried for
 * minutes (a processor outage) before the message is dead-lettered for an operator.
 */
export function startOrderConfirmedConsumer(
  bus: Pick<EventBus, 'consume'>,
  service: Pick<PaymentService, 'captureOrder'>,
  options: { readonly prefetch: number; readonly group?: string },
): Promise<Consumer> {
  return bus.consume<EventTypes>({
    group: options.group ?? consumerGroups.orderConfirmed,
    prefetch: options.prefetch,
    retry: { delaysMs: [1000, 5000, 30_000], maxAttempts: 10 },
    handlers: {
      'order.confirmed.v1': (event) => service.captureOrder(event),
    },
  });
}
