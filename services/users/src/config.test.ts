import { ConfigError } from '@bazaar/config';
import { describe, expect, it } from 'vitest';
import { DEV_KEY_ENCRYPTION_KEY, readConfig, serviceClientsOf } from './config';

const base = {
  DATABASE_URL: 'postgres://bazaar:pw@127.0.0.1:15432/users',
  REDIS_URL: 'redis://:pw@127.0.0.1:16379',
  RABBITMQ_URL: 'amqp://bazaar:pw@127.0.0.1:15672',
};

const realKek = 'k'.repeat(48);
const realClients = JSON.stringify([
  { id: 'orders', secret: 's'.repeat(40), audiences: ['users'] },
]);

function problemsOf(env: Record<string, string>): string[] {
  try {
    readConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => `${p.path}: ${p.message}`);
    throw error;
  }
  return [];
}

describe('users config', () => {
  it('needs only the PostgreSQL, Redis and RabbitMQ URLs in development, with safe defaults', () => {
    const config = readConfig(base);
    expect(config).toMatchObject({
      PORT: 4001,
      REDIS_COMMAND_TIMEOUT_MS: 100,
      ACCESS_TOKEN_TTL_MS: 900_000,
      ARGON2_MEMORY_KIB: 19_456,
      ARGON2_TIME_COST: 2,
      LOGIN_MAX_FAILURES: 5,
      LOGIN_FAILURE_WINDOW_MS: 900_000,
      USERS_KEY_ENCRYPTION_KEY: DEV_KEY_ENCRYPTION_KEY,
      TRUSTED_PROXIES: [],
    });
    expect(serviceClientsOf(config).map((client) => client.id)).toEqual([
      'gateway',
      'orders',
      'payments',
      'notifications',
      'analytics',
    ]);
  });

  it('lists every missing variable at once', () => {
    expect(problemsOf({})).toEqual([
      'DATABASE_URL: required',
      'REDIS_URL: required',
      'RABBITMQ_URL: required',
    ]);
  });

  it('refuses the development key-encryption key and development client secrets in production', () => {
    const problems = problemsOf({
      ...base,
      NODE_ENV: 'production',
      SERVICE_CLIENTS: JSON.stringify([
        { id: 'orders', secret: 'dev-only-client-secret-orders', audiences: ['users'] },
      ]),
    });
    expect(problems).toEqual([
      'USERS_KEY_ENCRYPTION_KEY: a known local default is refused in production; set a real secret',
      'SERVICE_CLIENTS: [0.secret] a known local default is refused in production; set a real secret',
    ]);
  });

  it('starts in production with real secrets, and has no clients unless configured', () => {
    const config = readConfig({
      ...base,
      NODE_ENV: 'production',
      USERS_KEY_ENCRYPTION_KEY: realKek,
    });
    expect(serviceClientsOf(config)).toEqual([]);
    const withClients = readConfig({
      ...base,
      NODE_ENV: 'production',
      USERS_KEY_ENCRYPTION_KEY: realKek,
      SERVICE_CLIENTS: realClients,
    });
    expect(serviceClientsOf(withClients).map((client) => client.id)).toEqual(['orders']);
  });

  it('refuses argon2 parameters below the OWASP minimum', () => {
    expect(problemsOf({ ...base, ARGON2_MEMORY_KIB: '4096', ARGON2_TIME_COST: '1' })).toEqual([
      'ARGON2_MEMORY_KIB: must be at least 19456 (19 MiB)',
      'ARGON2_TIME_COST: must be at least 2',
    ]);
  });

  it('wants ADMIN_EMAIL and ADMIN_PASSWORD together', () => {
    expect(problemsOf({ ...base, ADMIN_EMAIL: 'admin@example.com' })).toEqual([
      'ADMIN_PASSWORD: ADMIN_EMAIL and ADMIN_PASSWORD are set together or not at all',
    ]);
  });

  it('explains a malformed SERVICE_CLIENTS without echoing it', () => {
    const problems = problemsOf({ ...base, SERVICE_CLIENTS: '{"secret":"hunter2hunter2"' });
    expect(problems).toEqual(['SERVICE_CLIENTS: expected a JSON array']);
    const shape = problemsOf({ ...base, SERVICE_CLIENTS: '[{"id":"Orders!","secret":"x"}]' });
    expect(shape.join('\n')).not.toContain('"x"');
    expect(shape.length).toBeGreaterThanOrEqual(2);
  });
});
