import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Credentials of the local stack's servers: generated on first start, kept out of the repo (0600). */
export interface StackSecrets {
  readonly postgresPassword: string;
  readonly rabbitmqPassword: string;
  readonly redisPassword: string;
}

const generate = () => randomBytes(18).toString('base64url');

export function secretsFile(stateDir: string): string {
  return path.join(stateDir, 'secrets.json');
}

export async function loadOrCreateSecrets(stateDir: string): Promise<StackSecrets> {
  const file = secretsFile(stateDir);
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as StackSecrets;
  const secrets: StackSecrets = {
    postgresPassword: generate(),
    rabbitmqPassword: generate(),
    redisPassword: generate(),
  };
  await mkdir(stateDir, { recursive: true });
  await writeFile(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return secrets;
}
