// Every event type on the bus, into the warehouse: one consumer group bound to all routing keys.
import { eventTypeNames, type BazaarEvent, type EventTypes } from '@bazaar/contracts';
import type { Consumer, EventBus, EventHandler, EventHandlers } from '@bazaar/event-bus';
import type { Logger } from '@bazaar/logging';
import type { Meter } from '@opentelemetry/api';
import { createBatcher, type Batcher } from './event-batcher';
import type { AppendResult, Warehouse } from './warehouse';

export interface EventsConsumerOptions {
  readonly bus: EventBus;
  readonly warehouse: Warehouse;
  readonly logger: Logger;
  readonly meter: Meter;
  readonly batchMaxEvents: number;
  readonly batchMaxWaitMs: number;
  readonly prefetch: number;
  /** `analytics.events` in production (config CONSUMER_GROUP). */
  readonly group: string;
}

export interface EventsConsumer {
  readonly batcher: Batcher<BazaarEvent>;
  close(timeoutMs?: number): Promise<void>;
}

export async function startEventsConsumer(options: EventsConsumerOptions): Promise<EventsConsumer> {
  const { bus, warehouse, logger, meter } = options;
  const written = meter.createCounter('analytics.warehouse.events', {
    description: 'Events offered to the warehouse, by outcome (inserted, duplicate)',
  });
  const batchDuration = meter.createHistogram('analytics.warehouse.batch.duration', {
    unit: 's',
    description: 'Time to write one batch durably',
  });
  const batcher = createBatcher<BazaarEvent, AppendResult>({
    maxItems: options.batchMaxEvents,
    maxWaitMs: options.batchMaxWaitMs,
    write: (events) => warehouse.append(events),
    onWritten: (result, items, durationMs) => {
      written.add(result.inserted, { outcome: 'inserted' });
      written.add(result.duplicates, { outcome: 'duplicate' });
      batchDuration.record(durationMs / 1000);
      logger.debug({ items, ...result, durationMs }, 'batch written');
    },
  });
  const handle: EventHandler<BazaarEvent> = (event) => batcher.add(event);
  const handlers = Object.fromEntries(
    eventTypeNames.map((type) => [type, handle]),
  ) as EventHandlers<EventTypes>;
  const consumer: Consumer = await bus.consume<EventTypes>({
    group: options.group,
    handlers,
    prefetch: options.prefetch,
  });
  return {
    batcher,
    async close(timeoutMs = 10_000) {
      // Cancelling waits for handlers in flight, which wait for their batch: flush it at once.
      const closing = consumer.close(timeoutMs);
      await batcher.flush();
      await closing;
    },
  };
}
