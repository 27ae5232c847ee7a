import { isAppError } from '@bazaar/errors';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpClient, UpstreamStatusError } from './http-client';
import type { HttpClient, HttpClientOptions } from './http-client';
import { json, startRecordingServer } from './recording-server.fixture';
import type { RecordingServer, Responder } from './recording-server.fixture';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(respond: Responder): Promise<RecordingServer> {
  const server = await startRecordingServer(respond);
  cleanups.push(() => server.close());
  return server;
}

function clientFor(
  server: RecordingServer,
  overrides: Partial<HttpClientOptions> = {},
): HttpClient {
  const client = createHttpClient({
    name: 'upstream',
    baseUrl: server.url,
    timeoutMs: 2000,
    retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
    breaker: { consecutiveFailures: 100, halfOpenAfterMs: 1000 },
    ...overrides,
  });
  cleanups.push(() => client.close());
  return client;
}

/** The rejection of `promise`, which must reject. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected the call to reject'),
    (error: unknown) => error,
  );
}

const never: Responder = () => undefined;
const ok: Responder = (_request, response) => json(response, 200, { ok: true });

describe('requests and responses', () => {
  it('sends method, base path, query, JSON body and headers, and parses a JSON answer', async () => {
    const server = await serve((_request, response) =>
      json(response, 201, { id: 'ord_1' }, { 'x-request-id': 'r1' }),
    );
    const client = clientFor(server, {
      baseUrl: `${server.url}/internal/`,
      headers: { 'X-Caller': 'orders', 'x-overridden': 'client' },
    });

    const response = await client.request({
      method: 'POST',
      path: '/v1/orders',
      query: { limit: 10, draft: false, cursor: undefined },
      headers: { 'X-Overridden': 'request' },
      body: { items: [{ productId: 'prd_1', quantity: 2 }] },
    });

    expect(response).toMatchObject({ status: 201, body: { id: 'ord_1' } });
    expect(response.text).toBe('{"id":"ord_1"}');
    expect(response.headers['x-request-id']).toBe('r1');
    const [request] = server.requests;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/internal/v1/orders?limit=10&draft=false');
    expect(JSON.parse(request?.body ?? '')).toEqual({
      items: [{ productId: 'prd_1', quantity: 2 }],
    });
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers['x-caller']).toBe('orders');
    expect(request?.headers['x-overridden']).toBe('request');
  });

  it('leaves body undefined for a non-JSON answer and keeps the text', async () => {
    const server = await serve((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('plain words');
    });
    const response = await clientFor(server).request({ method: 'GET', path: '/text' });
    expect(response.body).toBeUndefined();
    expect(response.text).toBe('plain words');
  });

  it('parses problem+json', async () => {
    const server = await serve((_request, response) => {
      response
        .writeHead(409, { 'content-type': 'application/problem+json' })
        .end('{"code":"CONFLICT"}');
    });
    const response = await clientFor(server).request({ method: 'GET', path: '/x' });
    expect(response.body).toEqual({ code: 'CONFLICT' });
  });

  it('fails with UPSTREAM_FAILED when a JSON answer does not parse', async () => {
    const server = await serve((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"broken');
    });
    const error = await rejectionOf(clientFor(server).request({ method: 'GET', path: '/x' }));
    expect(isAppError(error, 'UPSTREAM_FAILED')).toBe(true);
  });
});

describe('deadline', () => {
  it('fails with UPSTREAM_TIMEOUT when the server does not answer in time', async () => {
    const server = await serve(never);
    const client = clientFor(server, { timeoutMs: 200 });

    const startedAt = performance.now();
    const error = await rejectionOf(client.request({ method: 'GET', path: '/slow' }));
    const elapsed = performance.now() - startedAt;

    expect(isAppError(error, 'UPSTREAM_TIMEOUT')).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(1200);
    // The deadline covers the whole call: the timed-out GET is not retried.
    expect(server.requests).toHaveLength(1);
  });

  it('covers reading the body', async () => {
    const server = await serve((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"items":[');
    });
    const error = await rejectionOf(
      clientFor(server, { timeoutMs: 200 }).request({ method: 'GET', path: '/stalls' }),
    );
    expect(isAppError(error, 'UPSTREAM_TIMEOUT')).toBe(true);
  });

  it('uses the request timeout over the client default', async () => {
    const server = await serve(never);
    const client = clientFor(server, { timeoutMs: 10_000 });
    const startedAt = performance.now();
    const error = await rejectionOf(client.request({ method: 'GET', path: '/', timeoutMs: 100 }));
    expect(isAppError(error, 'UPSTREAM_TIMEOUT')).toBe(true);
    expect(performance.now() - startedAt).toBeLessThan(1100);
  });

  it("rejects with the caller's abort reason when the caller's signal aborts", async () => {
    const server = await serve(never);
    const controller = new AbortController();
    const reason = new Error('client went away');
    setTimeout(() => controller.abort(reason), 50);
    const error = await rejectionOf(
      clientFor(server).request({ method: 'GET', path: '/', signal: controller.signal }),
    );
    expect(error).toBe(reason);
  });
});

describe('retries', () => {
  it('retries a GET on 503 and returns the eventual success', async () => {
    const server = await serve((_request, response, hit) =>
      hit < 3
        ? json(response, 503, { code: 'SERVICE_UNAVAILABLE' })
        : json(response, 200, { n: hit }),
    );
    const response = await clientFor(server).request({ method: 'GET', path: '/flaky' });
    expect(response).toMatchObject({ status: 200, body: { n: 3 } });
    expect(server.requests).toHaveLength(3);
  });

  it.each([502, 504])('retries a GET on %i', async (status) => {
    const server = await serve((_request, response, hit) =>
      json(response, hit === 1 ? status : 200, {}),
    );
    await expect(clientFor(server).request({ method: 'GET', path: '/' })).resolves.toMatchObject({
      status: 200,
    });
    expect(server.requests).toHaveLength(2);
  });

  it('retries a PUT after the connection drops', async () => {
    const server = await serve((_request, response, hit) => {
      if (hit === 1) response.socket?.destroy();
      else json(response, 200, {});
    });
    const response = await clientFor(server).request({ method: 'PUT', path: '/x', body: {} });
    expect(response.status).toBe(200);
    expect(server.requests).toHaveLength(2);
  });

  it('gives up after maxAttempts with UPSTREAM_FAILED caused by the last answer', async () => {
    const server = await serve((_request, response) => json(response, 503, {}));
    const error = await rejectionOf(clientFor(server).request({ method: 'GET', path: '/' }));
    expect(isAppError(error, 'UPSTREAM_FAILED')).toBe(true);
    expect(server.requests).toHaveLength(3);
  });

  it('does not retry a POST without an idempotency key, on 503 or a dropped connection', async () => {
    const server = await serve((_request, response) =>
      json(response, 503, { code: 'SERVICE_UNAVAILABLE' }),
    );
    const error = await rejectionOf(
      clientFor(server).request({ method: 'POST', path: '/charges', body: { amount: 100 } }),
    );
    expect(isAppError(error, 'UPSTREAM_FAILED')).toBe(true);
    const cause = (error as Error).cause;
    expect(cause).toBeInstanceOf(UpstreamStatusError);
    expect((cause as UpstreamStatusError).response).toMatchObject({
      status: 503,
      body: { code: 'SERVICE_UNAVAILABLE' },
    });
    expect(server.requests).toHaveLength(1);

    server.respondWith((_request, response) => {
      response.socket?.destroy();
    });
    await rejectionOf(clientFor(server).request({ method: 'POST', path: '/charges', body: {} }));
    expect(server.requests).toHaveLength(2);
  });

  it('retries a POST with an idempotency key, sending the same key every time', async () => {
    const server = await serve((_request, response, hit) =>
      hit < 3 ? json(response, 503, {}) : json(response, 201, { id: 'pay_1' }),
    );
    const response = await clientFor(server).request({
      method: 'POST',
      path: '/charges',
      body: { amount: 100 },
      idempotencyKey: 'pay_1-authorize',
    });
    expect(response.status).toBe(201);
    expect(server.requests.map((request) => request.headers['idempotency-key'])).toEqual([
      'pay_1-authorize',
      'pay_1-authorize',
      'pay_1-authorize',
    ]);
  });

  it('treats an Idempotency-Key passed as a header like the option', async () => {
    const server = await serve((_request, response, hit) =>
      json(response, hit === 1 ? 502 : 200, {}),
    );
    await clientFor(server).request({
      method: 'PATCH',
      path: '/x',
      headers: { 'Idempotency-Key': 'k1' },
    });
    expect(server.requests.map((request) => request.headers['idempotency-key'])).toEqual([
      'k1',
      'k1',
    ]);
  });

  it.each([400, 404, 409, 422])('returns a %i at once without retrying', async (status) => {
    const server = await serve((_request, response) => json(response, status, { code: 'X' }));
    const response = await clientFor(server).request({ method: 'GET', path: '/' });
    expect(response.status).toBe(status);
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry a 500', async () => {
    const server = await serve((_request, response) => json(response, 500, {}));
    const error = await rejectionOf(clientFor(server).request({ method: 'GET', path: '/' }));
    expect(isAppError(error, 'UPSTREAM_FAILED')).toBe(true);
    expect(server.requests).toHaveLength(1);
  });

  it('retries a 429 after its Retry-After', async () => {
    const server = await serve((_request, response, hit) =>
      hit === 1 ? json(response, 429, {}, { 'retry-after': '0' }) : json(response, 200, {}),
    );
    const response = await clientFor(server).request({ method: 'GET', path: '/' });
    expect(response.status).toBe(200);
    expect(server.requests).toHaveLength(2);
  });

  it('returns the 429 at once when Retry-After exceeds the remaining deadline', async () => {
    const server = await serve((_request, response) =>
      json(response, 429, {}, { 'retry-after': '30' }),
    );
    const startedAt = performance.now();
    const response = await clientFor(server, { timeoutMs: 1000 }).request({
      method: 'GET',
      path: '/',
    });
    expect(response.status).toBe(429);
    expect(server.requests).toHaveLength(1);
    expect(performance.now() - startedAt).toBeLessThan(1000);
  });

  it('does not retry a POST without a key on 429', async () => {
    const server = await serve((_request, response) =>
      json(response, 429, {}, { 'retry-after': '0' }),
    );
    const response = await clientFor(server).request({ method: 'POST', path: '/', body: {} });
    expect(response.status).toBe(429);
    expect(server.requests).toHaveLength(1);
  });
});

describe('options', () => {
  it('rejects options that cannot work', async () => {
    const server = await serve(ok);
    expect(() =>
      clientFor(server, { retry: { maxAttempts: 0, baseDelayMs: 1, maxDelayMs: 1 } }),
    ).toThrow(/maxAttempts/);
    expect(() => clientFor(server, { timeoutMs: 0 })).toThrow(/timeoutMs/);
  });

  it('refuses requests after close', async () => {
    const server = await serve(ok);
    const client = clientFor(server);
    await client.close();
    await expect(client.request({ method: 'GET', path: '/' })).rejects.toThrow(/closed/);
    expect(server.requests).toHaveLength(0);
  });
});
