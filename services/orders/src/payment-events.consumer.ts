import type { EventTypes } from '@bazaar/contracts';
import type { Consumer, EventBus } from '@bazaar/event-bus';
import type { Logger } from '@bazaar/logging';
import type { OrderService } from './order.service';

type PaymentEvents = Pick<EventTypes, 'payment.authorized.v1' | 'payment.failed.v1'>;

/**
 * The saga's inbound half: payment outcomes move orders. Handlers are idempotent through the state
 * machine (a duplicate or late event finds the order already moved on and changes nothing), so no
 * processed-events table is needed. A handler that throws (a lock not obtained in time, FerretDB
 * down) is retried with delay, then dead-lettered — never acknowledged.
 */
export function consumePaymentEvents(deps: {
  bus: EventBus;
  orders: OrderService;
  logger: Logger;
  group: string;
  prefetch: number;
}): Promise<Consumer> {
  const { orders, logger } = deps;
  const unknown = (orderId: string, type: string) =>
    // Payment events follow order.placed, which is published only after its order is stored: an
    // unknown order can never appear, so retrying would not help.
    logger.warn({ orderId, type }, 'payment event for an order that does not exist; ignored');
  return deps.bus.consume<PaymentEvents>({
    group: deps.group,
    prefetch: deps.prefetch,
    handlers: {
      'payment.authorized.v1': async (event) => {
        const result = await orders.transition(event.data.orderId, {
          type: 'authorize',
          paymentId: event.data.paymentId,
          at: new Date(),
        });
        if (result === 'missing') unknown(event.data.orderId, event.type);
      },
      'payment.failed.v1': async (event) => {
        const result = await orders.transition(event.data.orderId, {
          type: 'fail',
          paymentId: event.data.paymentId,
          reason:
            event.data.reason.code === 'PROCESSOR_UNAVAILABLE'
              ? 'PAYMENT_UNAVAILABLE'
              : 'PAYMENT_DECLINED',
          at: new Date(),
        });
        if (result === 'missing') unknown(event.data.orderId, event.type);
      },
    },
  });
}
