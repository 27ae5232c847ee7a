// Composition root: config → logger → telemetry → warehouse (DuckDB file lock = single writer) →
// event bus consumer of every event type → app → listen, drain on SIGTERM.
import { validateEvent } from '@bazaar/contracts';
import { isAppError } from '@bazaar/errors';
import { createEventBus } from '@bazaar/event-bus';
import { registerInstance } from '@bazaar/registry';
import { bootstrapService, runService, type Closer } from '@bazaar/service-kit';
import { buildApp } from './app';
import { prefetchOf, readConfig } from './config';
import { startEventsConsumer } from './events.consumer';
import { openWarehouse } from './open-warehouse';
import type { Warehouse } from './warehouse';

const service = 'analytics';

const { config, logger, telemetry } = bootstrapService(service, readConfig);

let warehouse: Warehouse;
try {
  warehouse = await openWarehouse(config, logger);
} catch (error) {
  // A second instance on the same DuckDB file ends here, with the reason: exactly one writer.
  const message = isAppError(error) ? error.message : 'could not open the warehouse';
  logger.fatal({ err: error, backend: config.WAREHOUSE_BACKEND }, message);
  await telemetry.shutdown();
  process.exit(1);
}

const bus = createEventBus({
  url: config.RABBITMQ_URL,
  logger,
  validate: validateEvent,
  name: service,
});
const app = buildApp({ config, logger, telemetry, warehouse });

try {
  const consumer = await startEventsConsumer({
    bus,
    warehouse,
    logger,
    meter: telemetry.meter,
    batchMaxEvents: config.BATCH_MAX_EVENTS,
    batchMaxWaitMs: config.BATCH_MAX_WAIT_MS,
    prefetch: prefetchOf(config),
    group: config.CONSUMER_GROUP,
  });
  // Closed in reverse: the registry lease first, then the consumer (its last batch is written and
  // acknowledged), the bus, and the warehouse last (checkpointed).
  const closers: Closer[] = [
    { name: 'warehouse', close: () => warehouse.close(), timeoutMs: 30_000 },
    { name: 'event bus', close: () => bus.close() },
    { name: 'events consumer', close: () => consumer.close(), timeoutMs: 15_000 },
  ];
  const running = await runService({ app, config, logger, telemetry, onShutdown: closers });
  closers.push(...(await registerInstance(service, config, running.port, logger)));
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  await bus.close().catch(() => undefined);
  await warehouse.close().catch(() => undefined);
  await telemetry.shutdown();
  process.exit(1);
}
