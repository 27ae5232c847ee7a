import type { EventTypes } from '@bazaar/contracts';
import type { Consumer, EventBus } from '@bazaar/event-bus';
import { consumerGroups, type PaymentService } from './payment.service';

/**
 * order.cancelled.v1 → remember the cancellation; void an authorization, refund a capture. Retried
 * for minutes like captures: a hold or a charge must not outlive its order.
 */
export function startOrderCancelledConsumer(
  bus: Pick<EventBus, 'consume'>,
  service: Pick<PaymentService, 'cancelOrder'>,
  options: { readonly prefetch: number; readonly group?: string },
): Promise<Consumer> {
  return bus.consume<EventTypes>({
    group: options.group ?? consumerGroups.orderCancelled,
    prefetch: options.prefetch,
    retry: { delaysMs: [1000, 5000, 30_000], maxAttempts: 10 },
    handlers: {
      'order.cancelled.v1': (event) => service.cancelOrder(event),
    },
  });
}
