import { ConfigError } from '@bazaar/config';
import { describe, expect, it } from 'vitest';
import { DEV_USERS_CLIENT_SECRET, readConfig } from './config';

const base = {
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/notifications',
  RABBITMQ_URL: 'amqp://u:p@127.0.0.1:5672',
  JWKS_URL: 'http://127.0.0.1:4001/.well-known/jwks.json',
  SMTP_URL: 'smtp://127.0.0.1:1025',
  OPERATORS_EMAIL: 'ops@example.com',
  ALERT_WEBHOOK_TOKEN: 'a-webhook-token-that-is-long-enough-0123456789',
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    readConfig(env);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems.map((problem) => problem.path);
  }
}

describe('config', () => {
  it('starts locally with the required variables and safe defaults', () => {
    const config = readConfig(base);
    expect(config.PORT).toBe(4005);
    expect(config.CONSUMER_GROUP).toBe('notifications.events');
    expect(config.USERS_CLIENT_SECRET).toBe(DEV_USERS_CLIENT_SECRET);
    expect(config.FAULT_CRASH_AFTER_SEND).toBe(false);
    expect(config.MAIL_RECONCILE_URL).toBeUndefined();
  });

  it('lists every missing variable at once', () => {
    expect(problemsOf({}).sort()).toEqual(
      [
        'ALERT_WEBHOOK_TOKEN',
        'DATABASE_URL',
        'JWKS_URL',
        'OPERATORS_EMAIL',
        'RABBITMQ_URL',
        'SMTP_URL',
      ].sort(),
    );
  });

  it('refuses in production the development client secret and short webhook tokens', () => {
    expect(
      problemsOf({ ...base, NODE_ENV: 'production', ALERT_WEBHOOK_TOKEN: 'short' }).sort(),
    ).toEqual(['ALERT_WEBHOOK_TOKEN', 'USERS_CLIENT_SECRET']);
  });

  it('refuses the fault hook in production', () => {
    const production = {
      ...base,
      NODE_ENV: 'production',
      USERS_CLIENT_SECRET: 'a-real-client-secret-0123456789abcdef',
    };
    expect(problemsOf(production)).toEqual([]);
    expect(problemsOf({ ...production, FAULT_CRASH_AFTER_SEND: 'true' })).toEqual([
      'FAULT_CRASH_AFTER_SEND',
    ]);
  });

  it('refuses a lease shorter than four SMTP deadlines (two instances could send one row)', () => {
    expect(problemsOf({ ...base, SMTP_TIMEOUT_MS: '10s', DELIVERY_LEASE_MS: '30s' })).toEqual([
      'DELIVERY_LEASE_MS',
    ]);
    expect(problemsOf({ ...base, SMTP_TIMEOUT_MS: '5s', DELIVERY_LEASE_MS: '20s' })).toEqual([]);
  });

  it('accepts only SMTP URLs for the relay', () => {
    expect(problemsOf({ ...base, SMTP_URL: 'http://127.0.0.1:1025' })).toEqual(['SMTP_URL']);
  });
});
