// Composition root: config → logger → telemetry → app → listen, drain on SIGTERM.
import { createLogger } from '@bazaar/logging';
import { registerService } from '@bazaar/registry';
import { runService, type Closer } from '@bazaar/service-kit';
import { startTelemetry } from '@bazaar/telemetry';
import { buildApp } from './app';
import { readConfig, type Config } from './config';

const service = 'psp-sandbox';

let config: Config;
try {
  config = readConfig();
} catch (error) {
  createLogger({ service }).fatal({ err: error }, 'invalid configuration');
  process.exit(1);
}

const logger = createLogger({
  service,
  level: config.LOG_LEVEL,
  ...(config.SERVICE_INSTANCE_ID === undefined ? {} : { instanceId: config.SERVICE_INSTANCE_ID }),
});
const telemetry = startTelemetry({
  serviceName: service,
  ...(config.SERVICE_INSTANCE_ID === undefined
    ? {}
    : { serviceInstanceId: config.SERVICE_INSTANCE_ID }),
  ...(config.OTEL_EXPORTER_OTLP_ENDPOINT === undefined
    ? {}
    : { otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT }),
});
const app = buildApp({ config, logger, telemetry });

// Filled once listening (registration needs the bound port); runService reads it at shutdown,
// and closes the registry lease first (closers run in reverse).
const closers: Closer[] = [];
try {
  const running = await runService({ app, config, logger, telemetry, onShutdown: closers });
  closers.push(
    ...(await registerService({
      etcdUrl: config.ETCD_URL,
      service,
      instanceId: config.SERVICE_INSTANCE_ID,
      host: config.HOST,
      port: running.port,
      logger,
    })),
  );
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  await telemetry.shutdown();
  process.exit(1);
}
