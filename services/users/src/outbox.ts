import { validateEvent, type BazaarEvent } from '@bazaar/contracts';
import { enqueueEvents } from '@bazaar/event-bus';
import type { Queryable } from './database';

/**
 * Where events wait to be published: written with the caller's client, inside the business
 * transaction, so an event exists exactly when the change it reports was committed. The relay
 * (`startPgOutboxRelay` in main.ts) publishes them.
 */
export interface EventOutbox {
  enqueue(client: Queryable, event: BazaarEvent): Promise<void>;
}

/**
 * The `outbox` table of this service's database (migrations/0001), through @bazaar/event-bus:
 * the event is checked against its contract first, and the active trace context is stored with
 * it, so consumers continue the request's trace.
 */
export function createPgOutbox(): EventOutbox {
  return {
    enqueue: (client, event) => enqueueEvents(client, [event], { validate: validateEvent }),
  };
}
