import { eventTypeNames, type EventType } from './generated/event-types';

const knownTypes = new Set<string>(eventTypeNames);

/** Whether `value` names an event type Bazaar has a contract for, e.g. `order.placed.v1`. */
export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && knownTypes.has(value);
}

/**
 * The routing key of an event type on the `bazaar.events` topic exchange: the type itself, so
 * consumers can bind `order.*.v1`, `payment.#` or one exact type (contracts/events/asyncapi.yaml).
 */
export function routingKeyOf<T extends EventType>(type: T): T {
  return type;
}
