import { randomUUID } from 'node:crypto';
import type { EventType, EventTypes } from './generated/event-types';
import { validateEvent, type EventValidationIssue } from './event-validation';

/** What a producer supplies to {@link createEvent}; the rest of the envelope is filled in. */
export interface CreateEventInput<T extends EventType> {
  /** The producing service, fixed per event type by its contract, e.g. `/orders`. */
  readonly source: EventTypes[T]['source'];
  /** The id of the aggregate the event is about, e.g. the order id. */
  readonly subject: EventTypes[T]['subject'];
  readonly data: EventTypes[T]['data'];
  /** The event id; a random UUID when omitted. Consumers deduplicate by it. */
  readonly id?: string;
  /** When the fact happened; now when omitted. */
  readonly time?: Date | string;
  /** W3C `traceparent` of the operation that produced the event. */
  readonly traceparent?: string;
  /** W3C `tracestate` that goes with `traceparent`. */
  readonly tracestate?: string;
}

/** Thrown by {@link createEvent} when the event it would create breaks its contract: a bug. */
export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError';

  constructor(
    readonly type: string,
    readonly errors: readonly EventValidationIssue[],
  ) {
    super(
      `Invalid ${type} event: ${errors.map((issue) => `${issue.path || '/'} ${issue.message}`).join('; ')}`,
    );
  }
}

/**
 * Builds the CloudEvents envelope of an event and checks it against its contract, so an invalid
 * event fails where it is produced instead of in every consumer (and never reaches an outbox).
 *
 * @throws {@link InvalidEventError} when the event does not satisfy its schema.
 * @example
 * ```ts
 * const event = createEvent('order.placed.v1', {
 *   source: '/orders',
 *   subject: order.id,
 *   data: { orderId: order.id, userId, items, total, paymentToken, placedAt, deadline },
 *   traceparent,
 * });
 * ```
 */
export function createEvent<T extends EventType>(
  type: T,
  input: CreateEventInput<T>,
): EventTypes[T] {
  const time = input.time ?? new Date();
  const event = {
    specversion: '1.0',
    id: input.id ?? randomUUID(),
    source: input.source,
    type,
    time: typeof time === 'string' ? time : time.toISOString(),
    datacontenttype: 'application/json',
    subject: input.subject,
    ...(input.traceparent === undefined ? {} : { traceparent: input.traceparent }),
    ...(input.tracestate === undefined ? {} : { tracestate: input.tracestate }),
    data: input.data,
  };
  const result = validateEvent(event);
  if (!result.ok) throw new InvalidEventError(type, result.errors);
  return result.event as EventTypes[T];
}
