import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, INTERNAL_ERROR_DETAIL, PROBLEM_CONTENT_TYPE } from '@bazaar/errors';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, markShuttingDown, REQUEST_ID_HEADER } from './app';
import { createKitFixture } from './kit.fixture';
import type { ReadinessCheck } from './readiness';

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const traceparent = `00-${traceId}-00f067aa0ba902b7-01`;
// fastify adds `; charset=utf-8` to JSON media types.
const problemContentType = new RegExp(`^${PROBLEM_CONTENT_TYPE.replace('+', '\\+')}(;|$)`);

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

function setup(
  options: {
    config?: Parameters<typeof createKitFixture>[0];
    readinessChecks?: ReadinessCheck[];
  } = {},
) {
  const fixture = createKitFixture(options.config);
  const app = createApp({
    ...fixture.deps,
    ...(options.readinessChecks === undefined ? {} : { readinessChecks: options.readinessChecks }),
  });
  apps.push(app);
  app.post(
    '/v1/things/:id',
    {
      schema: {
        body: {
          type: 'object',
          required: ['token', 'amount'],
          additionalProperties: false,
          properties: {
            token: { type: 'string' },
            amount: { type: 'integer', minimum: 1 },
          },
        },
      },
    },
    (request) => {
      request.log.info('handling thing');
      return { id: (request.params as { id: string }).id };
    },
  );
  app.get('/v1/conflict', () => {
    throw new AppError('RATE_LIMITED', 'Slow down.', { retryAfterSeconds: 7 });
  });
  app.get('/v1/bug', () => {
    throw new Error('db password=hunter2 rejected');
  });
  app.get('/v1/slow', async (request) => {
    await sleep(1000, undefined, { signal: request.signal }).catch(() => undefined);
    return { late: true };
  });
  return { app, ...fixture };
}

describe('request id', () => {
  it('generates one when absent and echoes it', async () => {
    const { app } = setup();
    const response = await app.inject({ method: 'GET', url: '/livez' });
    expect(response.headers[REQUEST_ID_HEADER]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('honours a well-formed incoming id and logs it', async () => {
    const { app, logLines } = setup();
    const response = await app.inject({
      method: 'POST',
      url: '/v1/things/t1',
      headers: { [REQUEST_ID_HEADER]: 'req-123.abc:9' },
      payload: { token: 'tok', amount: 1 },
    });
    expect(response.headers[REQUEST_ID_HEADER]).toBe('req-123.abc:9');
    const handled = logLines().find((line) => line.msg === 'handling thing');
    expect(handled?.request_id).toBe('req-123.abc:9');
  });

  it('replaces a malformed incoming id', async () => {
    const { app } = setup();
    for (const bad of ['has space', 'x'.repeat(129), 'a"b', 'line\tbreak']) {
      const response = await app.inject({
        method: 'GET',
        url: '/livez',
        headers: { [REQUEST_ID_HEADER]: bad },
      });
      expect(response.headers[REQUEST_ID_HEADER]).not.toBe(bad);
      expect(response.headers[REQUEST_ID_HEADER]).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('problem replies', () => {
  it('answers an unknown route with ROUTE_NOT_FOUND problem+json', async () => {
    const { app } = setup();
    const response = await app.inject({ method: 'GET', url: '/v1/nothing?token=secret' });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toMatch(problemContentType);
    expect(response.json()).toMatchObject({
      type: 'https://bazaar.dev/problems/route-not-found',
      status: 404,
      code: 'ROUTE_NOT_FOUND',
      instance: '/v1/nothing',
    });
  });

  it('answers a known path with another method with METHOD_NOT_ALLOWED and Allow', async () => {
    const { app } = setup();
    const response = await app.inject({ method: 'DELETE', url: '/v1/things/t1' });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe('POST');
    expect(response.json()).toMatchObject({ code: 'METHOD_NOT_ALLOWED', status: 405 });
  });

  it('lists every invalid field of a schema validation failure', async () => {
    const { app } = setup();
    const response = await app.inject({
      method: 'POST',
      url: '/v1/things/t1',
      payload: { amount: 0, extra: true },
    });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(problemContentType);
    const problem = response.json<{ code: string; errors: { path: string; message: string }[] }>();
    expect(problem.code).toBe('VALIDATION_FAILED');
    expect(problem.errors).toEqual(
      expect.arrayContaining([
        { path: '/body/token', message: 'is required' },
        { path: '/body/extra', message: 'is not allowed' },
        { path: '/body/amount', message: 'must be >= 1' },
      ]),
    );
  });

  it('maps body problems to their codes', async () => {
    const { app } = setup({ config: { BODY_LIMIT_BYTES: 64 } });
    const tooLarge = await app.inject({
      method: 'POST',
      url: '/v1/things/t1',
      payload: { token: 'x'.repeat(100), amount: 1 },
    });
    expect([tooLarge.statusCode, tooLarge.json<{ code: string }>().code]).toEqual([
      413,
      'PAYLOAD_TOO_LARGE',
    ]);
    const wrongType = await app.inject({
      method: 'POST',
      url: '/v1/things/t1',
      headers: { 'content-type': 'text/csv' },
      payload: 'a,b',
    });
    expect([wrongType.statusCode, wrongType.json<{ code: string }>().code]).toEqual([
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ]);
    const malformed = await app.inject({
      method: 'POST',
      url: '/v1/things/t1',
      headers: { 'content-type': 'application/json' },
      payload: '{"token":',
    });
    expect([malformed.statusCode, malformed.json<{ code: string }>().code]).toEqual([
      400,
      'BAD_REQUEST',
    ]);
  });

  it('answers an AppError with its status, detail and Retry-After', async () => {
    const { app } = setup();
    const response = await app.inject({ method: 'GET', url: '/v1/conflict' });
    expect(response.statusCode).toBe(429);
    expect(response.headers['retry-after']).toBe('7');
    expect(response.json()).toMatchObject({ code: 'RATE_LIMITED', detail: 'Slow down.' });
  });

  it('answers an unexpected error as INTERNAL without leaking it, and logs it once with the trace id', async () => {
    const { app, logLines, finishedSpans } = setup();
    const response = await app.inject({ method: 'GET', url: '/v1/bug', headers: { traceparent } });
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain('hunter2');
    expect(response.json()).toMatchObject({
      code: 'INTERNAL',
      detail: INTERNAL_ERROR_DETAIL,
      traceId,
    });
    const errors = logLines().filter((line) => line.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ msg: 'unhandled error', trace_id: traceId });
    expect((errors[0]?.err as { message: string }).message).toContain('rejected');
    const [span] = finishedSpans();
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes['error.type']).toBe('Error');
    expect(span?.events.map((event) => event.name)).toContain('exception');
  });

  it('answers 503 when the handler outlives REQUEST_TIMEOUT_MS, and aborts request.signal', async () => {
    const { app } = setup({ config: { REQUEST_TIMEOUT_MS: 50 } });
    const response = await app.inject({ method: 'GET', url: '/v1/slow' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
  });
});

describe('tracing and metrics', () => {
  it('continues an incoming traceparent with a server span named after the route', async () => {
    const { app, finishedSpans, logLines } = setup();
    const response = await app.inject({
      method: 'POST',
      url: '/v1/things/t1?x=1',
      headers: { traceparent, 'user-agent': 'vitest' },
      payload: { token: 'tok', amount: 5 },
    });
    expect(response.statusCode).toBe(200);
    const [span] = finishedSpans();
    expect(span?.name).toBe('POST /v1/things/:id');
    expect(span?.kind).toBe(SpanKind.SERVER);
    expect(span?.spanContext().traceId).toBe(traceId);
    expect(span?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(span?.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/v1/things/:id',
      'http.response.status_code': 200,
      'url.path': '/v1/things/t1',
      'url.scheme': 'http',
      'user_agent.original': 'vitest',
    });
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    // The handler ran after the body was read, still inside the span.
    const handled = logLines().find((line) => line.msg === 'handling thing');
    expect(handled).toMatchObject({ trace_id: traceId, span_id: span?.spanContext().spanId });
    const accessLog = logLines().find((line) => line.msg === 'request');
    expect(accessLog).toMatchObject({
      trace_id: traceId,
      method: 'POST',
      route: '/v1/things/:id',
      path: '/v1/things/t1',
      status: 200,
      level: 'info',
    });
  });

  it('starts a new trace without a traceparent and does not mark 4xx spans as errors', async () => {
    const { app, finishedSpans } = setup();
    await app.inject({ method: 'POST', url: '/v1/things/t1', payload: {} });
    const [span] = finishedSpans();
    expect(span?.spanContext().traceId).not.toBe(traceId);
    expect(span?.parentSpanContext).toBeUndefined();
    expect(span?.attributes['http.response.status_code']).toBe(400);
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('records http.server.request.duration by method, route and status, not for probes', async () => {
    const { app } = setup();
    await app.inject({ method: 'POST', url: '/v1/things/t1', payload: { token: 't', amount: 1 } });
    await app.inject({ method: 'GET', url: '/v1/conflict' });
    await app.inject({ method: 'GET', url: '/livez' });
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toContain('text/plain');
    const lines = metrics.body.split('\n');
    const counts = lines.filter((line) =>
      line.startsWith('http_server_request_duration_seconds_count{'),
    );
    expect(counts).toHaveLength(2);
    expect(counts.join('\n')).toMatch(
      /http_request_method="POST".*http_route="\/v1\/things\/:id"|http_route="\/v1\/things\/:id".*http_request_method="POST"/,
    );
    expect(counts.some((line) => line.includes('http_response_status_code="429"'))).toBe(true);
    expect(metrics.body).not.toContain('http_route="/livez"');
  });

  it('does not trace the operational routes', async () => {
    const { app, finishedSpans } = setup();
    await app.inject({ method: 'GET', url: '/livez' });
    await app.inject({ method: 'GET', url: '/readyz' });
    expect(finishedSpans()).toHaveLength(0);
  });
});

describe('health', () => {
  it('answers /livez', async () => {
    const { app } = setup();
    const response = await app.inject({ method: 'GET', url: '/livez' });
    expect([response.statusCode, response.json()]).toEqual([200, { status: 'alive' }]);
  });

  it('answers /readyz 200 when every check passes', async () => {
    const { app } = setup({
      readinessChecks: [
        { name: 'postgres', check: () => Promise.resolve() },
        { name: 'redis', check: () => Promise.resolve('PONG') },
      ],
    });
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });
  });

  it('answers /readyz 503 problem+json listing failing and timed-out checks', async () => {
    const { app, logLines } = setup({
      readinessChecks: [
        { name: 'postgres', check: () => Promise.resolve() },
        { name: 'rabbitmq', check: () => Promise.reject(new Error('ECONNREFUSED 10.0.0.5')) },
        { name: 'etcd', timeoutMs: 20, check: (signal) => sleep(5000, undefined, { signal }) },
      ],
    });
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toMatch(problemContentType);
    expect(response.json()).toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      detail: 'Not ready: rabbitmq, etcd.',
      checks: { postgres: 'ok', rabbitmq: 'failed', etcd: 'timed out' },
    });
    expect(response.body).not.toContain('10.0.0.5');
    const warnings = logLines().filter((line) => line.msg === 'readiness check failing');
    expect(warnings.map((line) => line.check)).toEqual(['rabbitmq', 'etcd']);
  });

  it('runs the checks concurrently', async () => {
    let releaseFirst: () => void = () => undefined;
    const secondStarted = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    const { app } = setup({
      readinessChecks: [
        // Passes only if the second check starts while the first is still pending.
        { name: 'first', timeoutMs: 500, check: () => secondStarted },
        { name: 'second', check: () => Promise.resolve(releaseFirst()) },
      ],
    });
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.json()).toEqual({ status: 'ready', checks: { first: 'ok', second: 'ok' } });
  });

  it('answers /readyz 503 SHUTTING_DOWN and closes connections once shutting down', async () => {
    const { app } = setup({ readinessChecks: [{ name: 'x', check: () => Promise.resolve() }] });
    markShuttingDown(app);
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ code: 'SHUTTING_DOWN' });
    const live = await app.inject({ method: 'GET', url: '/livez' });
    expect(live.statusCode).toBe(200);
    expect(live.headers.connection).toBe('close');
  });

  it('refuses two readiness checks with the same name', () => {
    const fixture = createKitFixture();
    const check = { name: 'db', check: () => Promise.resolve() };
    expect(() => createApp({ ...fixture.deps, readinessChecks: [check, check] })).toThrow(
      /named "db"/,
    );
  });
});
