// Entry point of the Helm chart's `users-bootstrap-admin` Job (deploy/helm/bazaar/templates/jobs.yaml):
// makes ADMIN_EMAIL an admin with ADMIN_PASSWORD, as the service does at start when both are set
// (UserService.ensureAdmin, idempotent), then exits. It migrates first (a no-op when the migrate Job
// ran) so that it depends on no other hook.
import { JOB_POOL, runDatabaseJob } from '@bazaar/postgres';
import { bootstrapService } from '@bazaar/service-kit';
import { buildApp } from './app';
import { readConfig } from './config';
import { createPool, migrate } from './database';
import { createRedis } from './redis';

const { config, logger, telemetry } = bootstrapService('users', readConfig);
const { ADMIN_EMAIL: email, ADMIN_PASSWORD: password } = config;
if (email === undefined || password === undefined) {
  logger.fatal('ADMIN_EMAIL and ADMIN_PASSWORD are required');
  process.exit(1);
}
// Two connections: ensureAdmin may query beside an open transaction.
const pool = createPool({ connectionString: config.DATABASE_URL, logger, ...JOB_POOL, max: 2 });
// The profile cache: promoting an existing account invalidates its cached profile.
const redis = createRedis({
  url: config.REDIS_URL,
  commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
  logger,
});
const { users } = buildApp({ config, logger, telemetry, pool, redis });

const exitCode = await runDatabaseJob(pool, logger, 'admin bootstrap', async () => {
  await migrate(pool, logger);
  await users.ensureAdmin(email, password);
  logger.info('admin account in place');
});
redis.disconnect();
await telemetry.shutdown();
process.exit(exitCode);
