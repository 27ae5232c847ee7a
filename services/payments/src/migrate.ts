// Entry point of the Helm chart's `payments-migrate` Job (deploy/helm/bazaar/templates/jobs.yaml):
// applies the pending migrations, then exits (the Job retries a failure).
import { JOB_POOL, runDatabaseJob } from '@bazaar/postgres';
import { bootstrapService } from '@bazaar/service-kit';
import { readConfig } from './config';
import { createPool, migrate } from './database';

const { config, logger, telemetry } = bootstrapService('payments', readConfig);
const pool = createPool({ connectionString: config.DATABASE_URL, logger, ...JOB_POOL });
const exitCode = await runDatabaseJob(pool, logger, 'migration', () => migrate(pool, logger));
await telemetry.shutdown();
process.exit(exitCode);
