import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { publicReadPrefixes, renderEdgeConfig } from './nginx-config';

const gatewayYaml = readFileSync(
  new URL('../../../services/gateway/gateway.yaml', import.meta.url),
  'utf8',
);

describe('edge nginx config', () => {
  it('caches only public catalog reads from the gateway file', () => {
    expect(publicReadPrefixes({ services: [] }, ['/v1/products'])).toEqual([]);
    const conf = renderEdgeConfig({
      declarativeYaml: gatewayYaml,
      prefix: '/tmp/edge/',
      listenPort: 8080,
      upstreams: ['127.0.0.1:8000', '127.0.0.1:8001'],
      vars: { GATEWAY_RATE_PER_SECOND: '50' },
    });
    expect(conf).toContain('location /v1/products {');
    expect(conf).not.toContain('location /v1/orders');
    expect(conf).toContain('client_max_body_size 1048576;');
    expect(conf).toContain('listen 127.0.0.1:8080;');
    expect(conf).toContain('server 127.0.0.1:8001 max_fails=3 fail_timeout=10s;');
    expect(conf).toContain('keepalive 64;');
    expect(conf).toContain('rate=200r/s');
    expect(conf).toContain('pid /tmp/edge/nginx.pid;');
    expect(conf).not.toContain('ssl');
  });

  it('treats a route with a jwt plugin, or writes, as not cacheable', () => {
    const yaml = `
services:
  - routes:
      - { paths: [/v1/products], methods: [GET], plugins: [{ name: jwt }] }
      - { paths: [/v1/products/mine], methods: [GET, POST] }
      - { paths: [/v1/products/public], methods: [GET] }
`;
    expect(publicReadPrefixes(parseYaml(yaml) as never, ['/v1/products'])).toEqual([
      '/v1/products/public',
    ]);
  });
});
