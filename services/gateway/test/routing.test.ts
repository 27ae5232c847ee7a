import type { EtcdRegistry } from '@bazaar/registry';
import { eventually } from '@bazaar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
services:
  - name: catalog
    retries: 2
    passive_health: { failures: 1, cooldown_ms: 30000 }
    circuit_breaker: { failures: 50, open_ms: 1000 }
    routes:
      - name: products
        paths: [/v1/products]
        strip_path: false
        plugins:
          - name: cors
            config: { origins: ['https://shop.example'] }
          - name: request-size-limiting
            config: { allowed_payload_size: 1, size_unit: kilobytes }
      - name: stripped
        paths: [/catalog]
        methods: [GET]
        strip_path: true
  - name: flaky
    retries: 0
    circuit_breaker: { failures: 3, open_ms: 3000 } # the open state outlasts the next request on a loaded machine
    routes:
      - name: flaky
        paths: [/v1/flaky]
        methods: [GET]
        strip_path: false
  - name: slow
    routes:
      - name: slow
        paths: [/v1/slow]
        methods: [GET, POST]
        read_timeout: 300
        strip_path: false
  - name: users
    routes:
      - name: auth
        paths: [/v1/auth]
        strip_path: false
`;

const problemType = /^application\/problem\+json/;

describe('gateway routing and resilience', () => {
  let registry: EtcdRegistry;
  let gateway: GatewayUnderTest;
  let catalog: Upstream[];
  let flaky: Upstream;
  let slow: Upstream;

  beforeAll(async () => {
    registry = createTestRegistry();
    catalog = await Promise.all(['catalog-1', 'catalog-2', 'catalog-3'].map(startUpstream));
    for (const upstream of catalog) await register(registry, 'catalog', upstream);
    flaky = await startUpstream('flaky-1');
    await register(registry, 'flaky', flaky);
    slow = await startUpstream('slow-1');
    slow.delayMs = 3000;
    await register(registry, 'slow', slow);
    gateway = await startGateway(yaml, registry);
  });

  afterAll(async () => {
    await gateway?.close();
    await registry?.close();
    await Promise.all([...(catalog ?? []), flaky, slow].map((upstream) => upstream?.kill()));
  });

  it('answers an unknown route with 404 problem+json ROUTE_NOT_FOUND', async () => {
    const response = await fetch(`${gateway.url}/v1/nowhere`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(problemType);
    expect(await response.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND', status: 404 });
  });

  it('proxies method, path, query and body, with request id, forwarded headers and a traceparent', async () => {
    const response = await fetch(`${gateway.url}/v1/products/prd_1?limit=2`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-request-id': 'req-123',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        'x-consumer-id': 'spoofed',
        'x-authenticated-userid': 'usr_spoofed',
      },
      body: JSON.stringify({ a: 1 }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('req-123');
    const body = (await response.json()) as { instance: string; url: string; body: string };
    expect(body.url).toBe('/v1/products/prd_1?limit=2');
    expect(body.body).toBe('{"a":1}');
    const seen = catalog
      .flatMap((upstream) => upstream.received)
      .find((entry) => entry.url === '/v1/products/prd_1?limit=2');
    expect(seen?.method).toBe('POST');
    expect(seen?.headers['x-request-id']).toBe('req-123');
    expect(seen?.headers['x-forwarded-for']).toBe('127.0.0.1');
    // The incoming trace continues upstream: same trace id, the gateway's client span as parent.
    expect(seen?.headers.traceparent).toMatch(
      /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/,
    );
    expect(seen?.headers.traceparent).not.toContain('00f067aa0ba902b7');
    // Identity headers are the gateway's to set: a client's copies never reach a service.
    expect(seen?.headers['x-consumer-id']).toBeUndefined();
    expect(seen?.headers['x-authenticated-userid']).toBeUndefined();
  });

  it('strips the matched prefix when the route says so', async () => {
    const response = await fetch(`${gateway.url}/catalog/v1/items`);
    expect(((await response.json()) as { url: string }).url).toBe('/v1/items');
  });

  it('spreads requests over every instance (round robin)', async () => {
    const instances = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const response = await fetch(`${gateway.url}/v1/products`);
      instances.add(((await response.json()) as { instance: string }).instance);
    }
    expect([...instances].sort()).toEqual(['catalog-1', 'catalog-2', 'catalog-3']);
  });

  it('passes small and large upstream answers through whole (read at once up to 64 KiB, streamed beyond)', async () => {
    try {
      for (const size of [10, 64 * 1024, 64 * 1024 + 1, 2 * 1024 * 1024]) {
        for (const upstream of catalog) upstream.bodyBytes = size;
        const response = await fetch(`${gateway.url}/v1/products`);
        expect(response.status).toBe(200);
        expect(response.headers.get('content-length')).toBe(String(size));
        const body = await response.text();
        expect(body.length).toBe(size);
        expect(body).toBe('x'.repeat(size));
      }
    } finally {
      for (const upstream of catalog) upstream.bodyBytes = undefined;
    }
  });

  it('refuses a body over the route limit with 413 and answers a CORS preflight', async () => {
    const large = await fetch(`${gateway.url}/v1/products`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ blob: 'x'.repeat(2000) }),
    });
    expect(large.status).toBe(413);
    expect(await large.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    const preflight = await fetch(`${gateway.url}/v1/products`, {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
    const other = await fetch(`${gateway.url}/v1/products`, {
      headers: { origin: 'https://evil.example' },
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers 504 UPSTREAM_TIMEOUT within the route deadline when the upstream is slow', async () => {
    const started = Date.now();
    const response = await fetch(`${gateway.url}/v1/slow`);
    const elapsed = Date.now() - started;
    expect(response.status).toBe(504);
    expect(response.headers.get('content-type')).toMatch(problemType);
    expect(await response.json()).toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
    // The deadline is 300 ms and the upstream takes 3 s; the bound is loose for a busy machine.
    expect(elapsed).toBeLessThan(2500);
  });

  it('logs a request its client abandons as 499, not as an unhandled error', async () => {
    const before = gateway.logs.length;
    // The upstream takes 3 s; the client gives up after 100 ms, well within the 300 ms deadline.
    await expect(
      fetch(`${gateway.url}/v1/slow`, { signal: AbortSignal.timeout(100) }),
    ).rejects.toThrow();
    const lines = () => gateway.logs.slice(before);
    await eventually(() =>
      expect(lines()).toContainEqual(expect.objectContaining({ path: '/v1/slow', status: 499 })),
    );
    // The proxy's own handling of the abandoned exchange ends within the route deadline.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(lines().filter((line) => line.level === 'error' || line.level === 'fatal')).toEqual([]);
  });

  it('opens the circuit after consecutive failures, then recloses once the upstream recovers', async () => {
    flaky.status = 503;
    for (let i = 0; i < 3; i++) {
      expect((await fetch(`${gateway.url}/v1/flaky`)).status).toBe(503);
    }
    const hitsWhenOpened = flaky.hits;
    const open = await fetch(`${gateway.url}/v1/flaky`);
    expect(open.status).toBe(503);
    expect(await open.json()).toMatchObject({ code: 'CIRCUIT_OPEN' });
    expect(open.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(flaky.hits).toBe(hitsWhenOpened);

    flaky.status = 200;
    await eventually(
      async () => ((await fetch(`${gateway.url}/v1/flaky`)).status === 200 ? true : undefined),
      { timeoutMs: 10_000, intervalMs: 250, what: 'breaker reclosed' },
    );
    for (let i = 0; i < 3; i++) {
      expect((await fetch(`${gateway.url}/v1/flaky`)).status).toBe(200);
    }
  });

  it('loses no request when one of three instances dies (ejection + retry of GETs)', async () => {
    const victim = catalog[1];
    if (victim === undefined) throw new Error('no victim');
    await victim.kill();
    const failures: number[] = [];
    let count = 0;
    const until = Date.now() + 2000;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < until) {
          const response = await fetch(`${gateway.url}/v1/products`);
          await response.arrayBuffer();
          count += 1;
          if (response.status !== 200) failures.push(response.status);
        }
      }),
    );
    expect(count).toBeGreaterThan(10);
    expect(failures).toEqual([]);
  });

  it('serves the aggregated OpenAPI document of the routed contracts at GET /docs', async () => {
    const response = await fetch(`${gateway.url}/docs`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas?: Record<string, unknown> };
    };
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths)).toContain('/v1/auth/login');
    // psp-sandbox is internal: no gateway route exposes it.
    expect(Object.keys(document.paths).some((path) => path.includes('authorizations'))).toBe(false);
    expect(JSON.stringify(document)).not.toContain('components.yaml#');
  });
});
