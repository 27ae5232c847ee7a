// Composition root: config → logger → telemetry → MongoDB (FerretDB locally) → app → event bus,
// relay, consumer and sweepers → listen, drain on SIGTERM.
import { randomUUID } from 'node:crypto';
import { validateEvent } from '@bazaar/contracts';
import { createEventBus } from '@bazaar/event-bus';
import { registerInstance } from '@bazaar/registry';
import { bootstrapService, runService, type Closer } from '@bazaar/service-kit';
import { MongoClient } from 'mongodb';
import { buildApp } from './app';
import { readConfig } from './config';

const service = 'orders';

const { config, logger, telemetry } = bootstrapService(service, readConfig);
const mongo = new MongoClient(config.MONGO_URL, {
  maxPoolSize: config.MONGO_POOL_SIZE,
  serverSelectionTimeoutMS: 5_000,
  connectTimeoutMS: 5_000,
  appName: service,
});
const bus = createEventBus({
  url: config.RABBITMQ_URL,
  logger,
  validate: validateEvent,
  name: service,
  exchange: config.EVENTS_EXCHANGE,
});
const instanceId = `${config.SERVICE_INSTANCE_ID ?? service}:${randomUUID().slice(0, 8)}`;
const orders = buildApp({ config, logger, telemetry, mongo, instanceId });

try {
  await mongo.connect();
  await orders.prepare();
  const closers: Closer[] = [
    { name: 'mongo client', close: () => mongo.close() },
    { name: 'event bus', close: () => bus.close() },
  ];
  closers.push(...(await orders.startWorkers(bus)));
  const running = await runService({
    app: orders.app,
    config,
    logger,
    telemetry,
    onShutdown: closers,
  });
  closers.push(...(await registerInstance(service, config, running.port, logger)));
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  await bus.close().catch(() => undefined);
  await mongo.close().catch(() => undefined);
  await telemetry.shutdown();
  process.exit(1);
}
