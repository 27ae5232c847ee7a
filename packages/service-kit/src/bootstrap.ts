import type { ServiceConfig } from '@bazaar/config';
import { createElasticsearchShipper, createLogger, type Logger } from '@bazaar/logging';
import { startTelemetry, type Telemetry } from '@bazaar/telemetry';

/** What every composition root starts with. */
export interface ServiceBasics<C> {
  readonly config: C;
  readonly logger: Logger;
  readonly telemetry: Telemetry;
}

/**
 * The first steps of every service's `main.ts`: read the configuration (on failure, log every
 * problem once and exit 1 — nothing else has started), then the logger and telemetry it configures.
 */
export function bootstrapService<C extends ServiceConfig>(
  service: string,
  readConfig: () => C,
  exit: (code: number) => never = (code) => process.exit(code),
): ServiceBasics<C> {
  let config: C;
  try {
    config = readConfig();
  } catch (error) {
    createLogger({ service }).fatal({ err: error }, 'invalid configuration');
    return exit(1);
  }
  const instanceId = config.SERVICE_INSTANCE_ID;
  // Telemetry first: the log shipper's counters need the meter provider it registers.
  const telemetry = startTelemetry({
    serviceName: service,
    ...(instanceId === undefined ? {} : { serviceInstanceId: instanceId }),
    ...(config.OTEL_EXPORTER_OTLP_ENDPOINT === undefined
      ? {}
      : { otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT }),
  });
  const shipper =
    config.LOG_ELASTICSEARCH_URL === undefined
      ? undefined
      : createElasticsearchShipper({ url: config.LOG_ELASTICSEARCH_URL });
  const logger = createLogger({
    service,
    level: config.LOG_LEVEL,
    ...(instanceId === undefined ? {} : { instanceId }),
    ...(shipper === undefined ? {} : { shipTo: shipper }),
  });
  if (shipper === undefined) return { config, logger, telemetry };
  // runService ends with telemetry.shutdown(): the last log lines are shipped just before it.
  return {
    config,
    logger,
    telemetry: {
      ...telemetry,
      shutdown: async () => {
        await shipper.close();
        await telemetry.shutdown();
      },
    },
  };
}
