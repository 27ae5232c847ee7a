// Composition root: config → logger → telemetry → app → listen, drain on SIGTERM.
import { createLogger } from '@bazaar/logging';
import { runService } from '@bazaar/service-kit';
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

try {
  await runService({ app, config, logger, telemetry });
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  await telemetry.shutdown();
  process.exit(1);
}
