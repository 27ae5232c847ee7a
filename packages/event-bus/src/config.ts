import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { loadConfig, url, type EnvSource } from '@bazaar/config';
import { infraUrls, loadOrCreateSecrets, portOf, readStackConfig } from '@bazaar/stack';

const dlqCliEnv = z.object({
  /** The broker to administer; default: the local stack's (profile `BAZAAR_PROFILE`, default `dev`). */
  RABBITMQ_URL: url({ protocols: ['amqp', 'amqps'] }).optional(),
});

/**
 * The broker URL of `npm run dlq`: `RABBITMQ_URL`, or else the local stack's RabbitMQ with the
 * credentials generated for it (`.bazaar/<profile>/secrets.json`).
 */
export async function dlqCliBrokerUrl(env: EnvSource = process.env): Promise<string> {
  const config = loadConfig(dlqCliEnv, env);
  if (config.RABBITMQ_URL !== undefined) return config.RABBITMQ_URL;
  const stack = readStackConfig(undefined, { ...env });
  if (!existsSync(path.join(stack.stateDir, 'secrets.json'))) {
    throw new Error(
      `RABBITMQ_URL is not set and the local ${stack.profile} stack has no credentials yet: set RABBITMQ_URL or run \`npm start\``,
    );
  }
  const secrets = await loadOrCreateSecrets(stack.stateDir);
  return infraUrls({ secrets, port: (name) => portOf(stack, name) }).rabbitmq;
}
