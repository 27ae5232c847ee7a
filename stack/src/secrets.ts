import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Credentials of the local stack's servers: generated on first start, kept out of the repo (0600). */
export interface StackSecrets {
  readonly postgresPassword: string;
  readonly rabbitmqPassword: string;
  readonly redisPassword: string;
  /** Bearer token Alertmanager presents to the notifications service's alert webhook. */
  readonly alertWebhookToken: string;
  /** Password of the test and bench stacks' local admin (`localAdmin`); dev uses ADMIN_* if set. */
  readonly adminPassword: string;
}

const generate = () => randomBytes(18).toString('base64url');

export function secretsFile(stateDir: string): string {
  return path.join(stateDir, 'secrets.json');
}

export async function loadOrCreateSecrets(stateDir: string): Promise<StackSecrets> {
  const file = secretsFile(stateDir);
  const existing = existsSync(file)
    ? (JSON.parse(await readFile(file, 'utf8')) as Partial<StackSecrets>)
    : undefined;
  // A secret added by a newer version is generated once and kept beside the older ones.
  const secrets: StackSecrets = {
    postgresPassword: existing?.postgresPassword ?? generate(),
    rabbitmqPassword: existing?.rabbitmqPassword ?? generate(),
    redisPassword: existing?.redisPassword ?? generate(),
    alertWebhookToken: existing?.alertWebhookToken ?? generate(),
    adminPassword: existing?.adminPassword ?? generate(),
  };
  if (existing !== undefined && Object.keys(existing).length === Object.keys(secrets).length) {
    return secrets;
  }
  await mkdir(stateDir, { recursive: true });
  try {
    // First creation is exclusive: two processes starting at once end up with the same secrets.
    await writeFile(file, `${JSON.stringify(secrets, null, 2)}\n`, {
      mode: 0o600,
      flag: existing === undefined ? 'wx' : 'w',
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateSecrets(stateDir);
    throw error;
  }
  return secrets;
}
