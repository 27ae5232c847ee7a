import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  accessTokenEnv,
  bool,
  csv,
  durationMs,
  logLevel,
  parseDurationMs,
  port,
  positiveInt,
  url,
} from './env-schemas';

function accepts<T>(schema: z.ZodType<T>, raw: string): T {
  return schema.parse(raw);
}

function refuses(schema: z.ZodType, raw: string): string {
  const result = schema.safeParse(raw);
  expect(result.success, `"${raw}" should be refused`).toBe(false);
  return result.error?.issues[0]?.message ?? '';
}

describe('port', () => {
  it('accepts 0 to 65535', () => {
    expect(accepts(port(), '0')).toBe(0);
    expect(accepts(port(), ' 8080 ')).toBe(8080);
    expect(accepts(port(), '65535')).toBe(65_535);
  });

  it('refuses anything else with the input in the message', () => {
    expect(refuses(port(), 'abc')).toBe('expected a number (a port from 0 to 65535), got "abc"');
    for (const raw of ['65536', '-1', '80.5', '1e3', '0x50', '']) refuses(port(), raw);
  });
});

describe('url', () => {
  it('accepts absolute URLs', () => {
    expect(accepts(url(), 'postgres://u:p@127.0.0.1:5432/db')).toBe(
      'postgres://u:p@127.0.0.1:5432/db',
    );
  });

  it('refuses relative URLs and other schemes when restricted', () => {
    refuses(url(), '/just/a/path');
    refuses(url(), 'localhost:4318');
    expect(refuses(url({ protocols: ['http', 'https'] }), 'ftp://x')).toBe(
      'expected an absolute URL (scheme://…) with scheme http: or https:',
    );
    expect(accepts(url({ protocols: ['http', 'https'] }), 'http://127.0.0.1:4318')).toBe(
      'http://127.0.0.1:4318',
    );
  });
});

describe('bool', () => {
  it('accepts true/false/1/0 in any case', () => {
    expect(['true', 'TRUE', '1', 'False', 'false', '0'].map((raw) => accepts(bool(), raw))).toEqual(
      [true, true, true, false, false, false],
    );
  });

  it('refuses other words', () => {
    for (const raw of ['yes', 'no', 'on', '2', 't']) refuses(bool(), raw);
  });
});

describe('durationMs', () => {
  it('reads ms, s, m, h and bare numbers', () => {
    expect(
      ['250ms', '5s', '1.5s', '2m', '1h', '750', '10 s'].map((raw) => accepts(durationMs(), raw)),
    ).toEqual([250, 5000, 1500, 120_000, 3_600_000, 750, 10_000]);
  });

  it('refuses other forms', () => {
    for (const raw of ['5 seconds', '-5s', 's', '5d', '1,5s']) refuses(durationMs(), raw);
    expect(parseDurationMs('1e400')).toBeUndefined();
  });
});

describe('csv', () => {
  it('splits on commas, trims and drops empty items', () => {
    expect(accepts(csv(), ' a, b,,c ,')).toEqual(['a', 'b', 'c']);
    expect(accepts(csv(), '')).toEqual([]);
  });
});

describe('logLevel', () => {
  it('accepts pino levels in any case', () => {
    expect(accepts(logLevel(), 'DEBUG')).toBe('debug');
    expect(accepts(logLevel(), 'silent')).toBe('silent');
    refuses(logLevel(), 'verbose');
  });
});

describe('positiveInt', () => {
  it('accepts whole numbers above zero only', () => {
    expect(accepts(positiveInt(), '1048576')).toBe(1_048_576);
    for (const raw of ['0', '-1', '1.5', 'ten']) refuses(positiveInt(), raw);
  });
});

describe('accessTokenEnv', () => {
  const schema = z.object(accessTokenEnv);

  it('needs the JWKS URL and defaults issuer and audience to what users signs', () => {
    expect(schema.parse({ JWKS_URL: 'http://127.0.0.1:4001/.well-known/jwks.json' })).toEqual({
      JWKS_URL: 'http://127.0.0.1:4001/.well-known/jwks.json',
      JWT_ISSUER: 'bazaar-users',
      JWT_AUDIENCE: 'bazaar-api',
    });
    expect(schema.safeParse({}).success).toBe(false);
    expect(schema.safeParse({ JWKS_URL: 'ftp://keys.example/jwks' }).success).toBe(false);
  });
});
