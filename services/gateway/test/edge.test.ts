import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EtcdRegistry } from '@bazaar/registry';
import { eventually } from '@bazaar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderEdgeConfig } from '../../../stack/edge/src/nginx-config';
import {
  createTestRegistry,
  register,
  startGateway,
  startUpstream,
  type GatewayUnderTest,
  type Upstream,
} from './gateway.fixture';

const yaml = `
_format_version: '3.0'
plugins:
  - name: request-size-limiting
    config: { allowed_payload_size: 64, size_unit: kilobytes }
services:
  - name: orders
    routes:
      - name: products
        paths: [/v1/products]
        methods: [GET, HEAD]
        strip_path: false
      - name: orders
        paths: [/v1/orders]
        strip_path: false
`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        resolve(typeof address === 'object' && address !== null ? address.port : 0),
      );
    });
  });
}

describe('edge (nginx generated from the declarative file) in front of the gateway', () => {
  let registry: EtcdRegistry;
  let gateway: GatewayUnderTest;
  let upstream: Upstream;
  let nginx: ChildProcess | undefined;
  let prefix: string;
  let edgeUrl: string;

  beforeAll(async () => {
    registry = createTestRegistry();
    upstream = await startUpstream('orders-1');
    await register(registry, 'orders', upstream);
    gateway = await startGateway(yaml, registry);
    prefix = await mkdtemp(path.join(tmpdir(), 'bazaar-edge-'));
    await mkdir(path.join(prefix, 'temp'));
    await mkdir(path.join(prefix, 'cache'));
    const port = await freePort();
    edgeUrl = `http://127.0.0.1:${port}`;
    const conf = path.join(prefix, 'nginx.conf');
    await writeFile(
      conf,
      renderEdgeConfig({
        declarativeYaml: yaml,
        prefix,
        listenPort: port,
        upstreams: [new URL(gateway.url).host],
      }),
    );
    // Workers keep the master's user here, so they can write the private temp and cache dirs.
    const globals = process.getuid?.() === 0 ? 'daemon off; user root;' : 'daemon off;';
    nginx = spawn('/usr/sbin/nginx', ['-e', 'stderr', '-p', prefix, '-c', conf, '-g', globals], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    await eventually(async () => ((await fetch(`${edgeUrl}/edge/healthz`)).ok ? true : undefined), {
      timeoutMs: 10_000,
      what: 'nginx ready',
    });
  });

  afterAll(async () => {
    if (nginx !== undefined && nginx.exitCode === null) {
      const exited = new Promise((resolve) => nginx?.once('exit', resolve));
      nginx.kill('SIGTERM');
      await exited;
    }
    await gateway?.close();
    await registry?.close();
    await upstream?.kill();
    if (prefix !== undefined) await rm(prefix, { recursive: true, force: true });
  });

  it('proxies through the gateway with security headers and the request id', async () => {
    const response = await fetch(`${edgeUrl}/v1/orders/ord_1`, {
      headers: { 'x-request-id': 'edge-req-1' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('x-request-id')).toBe('edge-req-1');
    const seen = upstream.received.at(-1);
    expect(seen?.url).toBe('/v1/orders/ord_1');
    expect(seen?.headers['x-request-id']).toBe('edge-req-1');
  });

  it('caches public catalog reads, never authenticated ones', async () => {
    const url = `${edgeUrl}/v1/products?cursor=${Date.now()}`;
    const first = await fetch(url);
    await first.arrayBuffer();
    const hits = upstream.hits;
    const second = await fetch(url);
    await second.arrayBuffer();
    expect([first.headers.get('x-cache-status'), second.headers.get('x-cache-status')]).toEqual([
      'MISS',
      'HIT',
    ]);
    expect(upstream.hits).toBe(hits);
    const authenticated = await fetch(url, { headers: { authorization: 'Bearer x' } });
    await authenticated.arrayBuffer();
    expect(upstream.hits).toBe(hits + 1);
  });

  it('refuses a body over the declarative size limit at the edge, and passes 404 problems through', async () => {
    const hits = upstream.hits;
    const large = await fetch(`${edgeUrl}/v1/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ blob: 'x'.repeat(100 * 1024) }),
    });
    expect(large.status).toBe(413);
    expect(large.headers.get('content-type')).toBe('application/problem+json');
    expect(await large.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', status: 413 });
    expect(upstream.hits).toBe(hits);
    const missing = await fetch(`${edgeUrl}/v1/nowhere`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
  });
});
