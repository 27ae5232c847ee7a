import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from './config';
import { ConfigError } from './config-error';
import { csv, port, serviceEnv, url } from './env-schemas';
import { secret } from './secret';

function problemsOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('returns typed values with defaults applied', () => {
    const config = loadConfig(serviceEnv, { PORT: '4004' });
    expect(config).toEqual({
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: 4004,
      LOG_LEVEL: 'info',
      SHUTDOWN_TIMEOUT_MS: 10_000,
      REQUEST_TIMEOUT_MS: 10_000,
      BODY_LIMIT_BYTES: 1_048_576,
    });
  });

  it('reads only the variables of the schema', () => {
    const config = loadConfig(z.object({ PORT: port() }), { PORT: '1', PATH: '/usr/bin' });
    expect(Object.keys(config)).toEqual(['PORT']);
  });

  it('lists every problem at once, one per line', () => {
    const schema = serviceEnv.extend({ DATABASE_URL: url(), REGION: z.enum(['eu', 'us']) });
    const message = problemsOf(() =>
      loadConfig(schema, {
        PORT: 'abc',
        LOG_LEVEL: 'loud',
        SHUTDOWN_TIMEOUT_MS: 'soon',
        REGION: 'mars',
      }),
    );
    expect(message.split('\n')).toEqual([
      'Invalid configuration (5 problems):',
      '  - PORT: expected a number (a port from 0 to 65535), got "abc"',
      '  - LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"',
      '  - SHUTDOWN_TIMEOUT_MS: expected a duration such as 250ms, 5s, 2m or a number of ms, got "soon"',
      '  - DATABASE_URL: required',
      '  - REGION: expected one of "eu", "us", got "mars"',
    ]);
  });

  it('exposes the problems as data', () => {
    try {
      loadConfig(z.object({ A: port(), B: port() }), {});
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual([
        { path: 'A', message: 'required' },
        { path: 'B', message: 'required' },
      ]);
    }
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig(serviceEnv, { PORT: '1', HOST: '', LOG_LEVEL: '  ' }).HOST).toBe('127.0.0.1');
    expect(problemsOf(() => loadConfig(serviceEnv, { PORT: '' }))).toContain('  - PORT: required');
  });

  it('returns a deeply frozen object', () => {
    const config = loadConfig(z.object({ PORT: port(), PEERS: csv() }), {
      PORT: '1',
      PEERS: 'a,b',
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.PEERS)).toBe(true);
    expect(() => {
      (config as { PORT: number }).PORT = 2;
    }).toThrow(TypeError);
    expect(() => {
      (config.PEERS as string[]).push('c');
    }).toThrow(TypeError);
  });

  it('does not echo URLs, which may hold credentials', () => {
    const message = problemsOf(() =>
      loadConfig(z.object({ DATABASE_URL: url() }), { DATABASE_URL: 'postgres//u:hunter2@db' }),
    );
    expect(message).toContain('  - DATABASE_URL: expected an absolute URL (scheme://…)');
    expect(message).not.toContain('hunter2');
  });
});

describe('secret in loadConfig', () => {
  const localDefault = 'local-only-signing-key';
  const schema = z.object({
    NODE_ENV: z.string().optional(),
    SIGNING_KEY: secret({ localDefault, minLength: 32 }),
    API_KEY: secret({ minLength: 16 }),
  });

  it('uses the local default and accepts short values outside production', () => {
    const config = loadConfig(schema, { NODE_ENV: 'development', API_KEY: 'k' });
    expect(config.SIGNING_KEY).toBe(localDefault);
    expect(config.API_KEY).toBe('k');
  });

  it('refuses the local default, known defaults and short values in production', () => {
    const message = problemsOf(() =>
      loadConfig(schema, { NODE_ENV: 'production', API_KEY: 'changeme' }),
    );
    expect(message.split('\n')).toEqual([
      'Invalid configuration (2 problems):',
      '  - SIGNING_KEY: a known local default is refused in production; set a real secret',
      '  - API_KEY: a known local default is refused in production; set a real secret',
    ]);
    const short = problemsOf(() =>
      loadConfig(schema, {
        NODE_ENV: 'production',
        SIGNING_KEY: 'x'.repeat(31),
        API_KEY: 'short-api-key',
      }),
    );
    expect(short).toContain('  - SIGNING_KEY: must be at least 32 characters in production');
    expect(short).toContain('  - API_KEY: must be at least 16 characters in production');
  });

  it('never echoes a refused secret', () => {
    const message = problemsOf(() =>
      loadConfig(schema, {
        NODE_ENV: 'production',
        SIGNING_KEY: 'tiny-secret-value',
        API_KEY: 'x',
      }),
    );
    expect(message).not.toContain('tiny-secret-value');
  });

  it('accepts long, non-default secrets in production', () => {
    const config = loadConfig(schema, {
      NODE_ENV: 'production',
      SIGNING_KEY: 'k'.repeat(32),
      API_KEY: 'a-real-api-key-123',
    });
    expect(config.SIGNING_KEY).toHaveLength(32);
  });

  it('applies the production policy only inside loadConfig', () => {
    expect(() => loadConfig(schema, { NODE_ENV: 'production', API_KEY: 'x' })).toThrow(ConfigError);
    expect(secret().parse('x')).toBe('x');
  });

  it('reports a missing secret in production as required', () => {
    const message = problemsOf(() =>
      loadConfig(z.object({ NODE_ENV: z.string(), API_KEY: secret() }), {
        NODE_ENV: 'production',
      }),
    );
    expect(message).toContain('  - API_KEY: required');
  });
});
