import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DeclarativeConfigError, effectivePlugins, parseDeclarative } from './declarative';

const vars = {
  GATEWAY_JWKS_URL: 'http://127.0.0.1:4001/.well-known/jwks.json',
  GATEWAY_JWT_ISSUER: 'bazaar-users',
  GATEWAY_JWT_AUDIENCE: 'bazaar-api',
  GATEWAY_RATE_PER_SECOND: '50',
  GATEWAY_RATE_PER_MINUTE: '1200',
  GATEWAY_LOGIN_RATE_PER_MINUTE: '10',
};

describe('declarative configuration', () => {
  it('accepts the shipped gateway.yaml, with route plugins over global ones', () => {
    const text = readFileSync(new URL('../gateway.yaml', import.meta.url), 'utf8');
    const config = parseDeclarative(text, vars);
    const users = config.services.find((service) => service.name === 'users');
    const login = users?.routes.find((route) => route.name === 'users-login');
    if (users === undefined || login === undefined) throw new Error('login route missing');
    const plugins = effectivePlugins(config, users, login);
    expect(plugins.find((plugin) => plugin.name === 'rate-limiting')?.config).toMatchObject({
      minute: 10,
      limit_by: 'ip',
    });
    expect(plugins.map((plugin) => plugin.name).sort()).toEqual([
      'cors',
      'rate-limiting',
      'request-size-limiting',
    ]);
  });

  it('refuses symmetric or unsigned JWT algorithms, unknown fields and variables, duplicate routes', () => {
    const base = (plugin: string, extra = '') => `
_format_version: '3.0'
services:
  - name: a
    ${extra}
    routes:
      - name: r
        paths: [/a]
        plugins: [${plugin}]
`;
    const jwt = (alg: string) =>
      `{ name: jwt, config: { jwks_uri: 'http://x/jwks', issuer: i, audiences: [a], algorithms: [${alg}] } }`;
    expect(() => parseDeclarative(base(jwt('HS256')))).toThrow(DeclarativeConfigError);
    expect(() => parseDeclarative(base(jwt('none')))).toThrow(/algorithms/);
    expect(parseDeclarative(base(jwt('ES256'))).services[0]?.routes[0]?.plugins).toHaveLength(1);
    expect(() => parseDeclarative(base('{ name: rate-limiting, config: {} }'))).toThrow(
      /second, minute, hour/,
    );
    expect(() => parseDeclarative(base('{ name: cors }', 'colour: blue'))).toThrow(/colour/);
    expect(() =>
      parseDeclarative(
        `_format_version: '3.0'\nplugins: [{ name: jwt, config: { jwks_uri: '\${NOPE}' } }]`,
      ),
    ).toThrow(/unknown variables: NOPE/);
    expect(() =>
      parseDeclarative(`
_format_version: '3.0'
services:
  - { name: a, routes: [{ name: r, paths: [/a] }] }
  - { name: b, routes: [{ name: r, paths: [/b] }] }
`),
    ).toThrow(/duplicate route name "r"/);
  });
});
