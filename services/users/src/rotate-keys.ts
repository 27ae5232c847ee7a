// `npm run rotate-keys -w services/users`: makes a new signing key active, as the admin route does.
// Running instances pick it up within SIGNING_KEYS_RELOAD_MS (or at once on its first token).
import { createLogger } from '@bazaar/logging';
import { readConfig } from './config';
import { createPool } from './database';
import { createKeyRing } from './keys/key-ring';
import { createSigningKeyRepository } from './keys/signing-key.repository';

const config = readConfig();
const logger = createLogger({ service: 'users', level: config.LOG_LEVEL });
const pool = createPool({
  connectionString: config.DATABASE_URL,
  logger,
  max: 1,
  statementTimeoutMs: config.REQUEST_TIMEOUT_MS,
});
try {
  const keyRing = createKeyRing({
    repository: createSigningKeyRepository(pool),
    keyEncryptionKey: config.USERS_KEY_ENCRYPTION_KEY,
    longestTokenLifetimeMs: Math.max(config.ACCESS_TOKEN_TTL_MS, config.SERVICE_TOKEN_TTL_MS),
    clockToleranceMs: config.JWT_CLOCK_TOLERANCE_MS,
    reloadIntervalMs: config.SIGNING_KEYS_RELOAD_MS,
    logger,
  });
  await keyRing.start();
  await keyRing.rotate();
  keyRing.stop();
} catch (error) {
  logger.fatal({ err: error }, 'rotation failed');
  process.exitCode = 1;
} finally {
  await pool.end();
}
