// Composition root: config → logger → telemetry → app → listen, drain on SIGTERM.
import { registerInstance } from '@bazaar/registry';
import { bootstrapService, runService, type Closer } from '@bazaar/service-kit';
import { buildApp } from './app';
import { readConfig } from './config';

const service = 'psp-sandbox';

const { config, logger, telemetry } = bootstrapService(service, readConfig);
const app = buildApp({ config, logger, telemetry });

// Filled once listening (registration needs the bound port); runService reads it at shutdown,
// and closes the registry lease first (closers run in reverse).
const closers: Closer[] = [];
try {
  const running = await runService({ app, config, logger, telemetry, onShutdown: closers });
  closers.push(...(await registerInstance(service, config, running.port, logger)));
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  await telemetry.shutdown();
  process.exit(1);
}
