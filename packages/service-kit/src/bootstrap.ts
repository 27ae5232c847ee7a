import type { ServiceConfig } from '@bazaar/config';
import { createLogger, type Logger } from '@bazaar/logging';
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
  const logger = createLogger({
    service,
    level: config.LOG_LEVEL,
    ...(instanceId === undefined ? {} : { instanceId }),
  });
  const telemetry = startTelemetry({
    serviceName: service,
    ...(instanceId === undefined ? {} : { serviceInstanceId: instanceId }),
    ...(config.OTEL_EXPORTER_OTLP_ENDPOINT === undefined
      ? {}
      : { otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT }),
  });
  return { config, logger, telemetry };
}
