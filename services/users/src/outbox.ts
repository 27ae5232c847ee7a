import { injectContext } from '@bazaar/telemetry';
import type { Queryable } from './database';

/** A CloudEvents 1.0 envelope (JSON structured mode) as it is stored and published. */
export interface OutgoingEvent {
  readonly specversion: '1.0';
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly time: string;
  readonly datacontenttype: 'application/json';
  readonly subject: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
  readonly data: unknown;
}

/**
 * Where events wait to be published: written with the caller's client, inside the business
 * transaction, so an event exists exactly when the change it reports was committed.
 */
export interface EventOutbox {
  enqueue(client: Queryable, event: OutgoingEvent): Promise<void>;
}

/**
 * The `outbox` table of this service's database, in the shape @bazaar/event-bus's relay reads.
 * The active trace context is stored with the event so consumers continue the request's trace.
 */
export function createPgOutbox(): EventOutbox {
  return {
    async enqueue(client, event) {
      const headers: Record<string, string> = {};
      injectContext(headers);
      await client.query(
        'INSERT INTO outbox (event_id, type, payload, headers) VALUES ($1, $2, $3, $4)',
        [event.id, event.type, JSON.stringify(event), JSON.stringify(headers)],
      );
    },
  };
}
