import { PROBLEM_CONTENT_TYPE } from '@bazaar/errors';
import { createLogger } from '@bazaar/logging';
import { startTelemetry } from '@bazaar/telemetry';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from './app';
import { readConfig } from './config';
import { createIdempotencyRepository } from './idempotency.repository';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

function setupWithRepository(env: Record<string, string> = {}) {
  const idempotency = createIdempotencyRepository({ ttlMs: 60_000, maxKeys: 100 });
  const app = buildApp({
    config: readConfig({ NODE_ENV: 'test', ...env }),
    logger: createLogger({ service: 'psp-sandbox', level: 'silent' }),
    telemetry: startTelemetry({ serviceName: 'psp-sandbox' }),
    idempotency,
  });
  apps.push(app);
  return { app, idempotency };
}

function setup(env: Record<string, string> = {}) {
  return setupWithRepository(env).app;
}

const body = { token: 'tok_visa', amount: { amount: 1299, currency: 'USD' }, reference: 'pay_1' };

function authorize(
  app: FastifyInstance,
  payload: unknown,
  key: string | null = 'key-1',
  headers: Record<string, string> = {},
) {
  return app.inject({
    method: 'POST',
    url: '/v1/authorizations',
    headers: { ...(key === null ? {} : { 'idempotency-key': key }), ...headers },
    payload: payload as Record<string, unknown>,
  });
}

const problemType = new RegExp(`^${PROBLEM_CONTENT_TYPE.replace('+', '\\+')}`);

describe('POST /v1/authorizations', () => {
  it('approves tok_visa with 201 and an auth_ id', async () => {
    const response = await authorize(setup(), body);
    expect(response.statusCode).toBe(201);
    const authorization = response.json<{ id: string }>();
    expect(authorization).toMatchObject({
      status: 'approved',
      amount: { amount: 1299, currency: 'USD' },
      reference: 'pay_1',
    });
    expect(authorization.id).toMatch(/^auth_[A-Za-z0-9_-]{22}$/);
    expect(response.headers['idempotent-replayed']).toBeUndefined();
  });

  it('declines tok_chargeDeclined and tok_insufficientFunds with 402 problems', async () => {
    const app = setup();
    const declined = await authorize(app, { ...body, token: 'tok_chargeDeclined' }, 'k-declined');
    expect(declined.statusCode).toBe(402);
    expect(declined.headers['content-type']).toMatch(problemType);
    expect(declined.json()).toMatchObject({ code: 'CARD_DECLINED', status: 402 });
    const poor = await authorize(app, { ...body, token: 'tok_insufficientFunds' }, 'k-poor');
    expect(poor.statusCode).toBe(402);
    expect(poor.json()).toMatchObject({ code: 'INSUFFICIENT_FUNDS', status: 402 });
  });

  it('answers an unknown token with 422 INVALID_CARD_TOKEN', async () => {
    const response = await authorize(setup(), { ...body, token: 'tok_nope' });
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({ code: 'INVALID_CARD_TOKEN' });
  });

  it('holds the key while tok_slow waits, then approves', async () => {
    const { app, idempotency } = setupWithRepository({ PSP_SANDBOX_SLOW_DELAY_MS: '300ms' });
    const slowBody = { ...body, token: 'tok_slow' };
    const slow = authorize(app, slowBody, 'k-slow');
    while (idempotency.size === 0) await new Promise((resolve) => setImmediate(resolve));
    // While tok_slow waits, its key is held: a retry is told to come back later.
    const retry = await authorize(app, slowBody, 'k-slow');
    expect(retry.statusCode).toBe(409);
    expect(retry.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE' });
    expect(retry.headers['retry-after']).toBe('1');
    const approved = await slow;
    expect(approved.statusCode).toBe(201);
  });

  it('replays the stored response for the same key and body', async () => {
    const app = setup();
    const first = await authorize(app, body, 'k-same');
    const reordered = {
      reference: 'pay_1',
      amount: { currency: 'USD', amount: 1299 },
      token: 'tok_visa',
    };
    const second = await authorize(app, reordered, 'k-same');
    expect(second.statusCode).toBe(201);
    expect(second.json()).toEqual(first.json());
    expect(second.headers['idempotent-replayed']).toBe('true');
  });

  it('replays a decline too, problem and all', async () => {
    const app = setup();
    const declinedBody = { ...body, token: 'tok_chargeDeclined' };
    const first = await authorize(app, declinedBody, 'k-decline', {
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    });
    const second = await authorize(app, declinedBody, 'k-decline');
    expect(second.statusCode).toBe(402);
    expect(second.json()).toEqual(first.json());
    expect(second.json()).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736' });
  });

  it('refuses the same key with a different body: 422 IDEMPOTENCY_KEY_REUSED', async () => {
    const app = setup();
    await authorize(app, body, 'k-reuse');
    const other = await authorize(
      app,
      { ...body, amount: { amount: 1300, currency: 'USD' } },
      'k-reuse',
    );
    expect(other.statusCode).toBe(422);
    expect(other.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('keeps keys apart: another key authorizes again with a new id', async () => {
    const app = setup();
    const first = await authorize(app, body, 'k-a');
    const second = await authorize(app, body, 'k-b');
    expect(second.json<{ id: string }>().id).not.toBe(first.json<{ id: string }>().id);
  });

  it('requires an Idempotency-Key', async () => {
    const response = await authorize(setup(), body, null);
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ path: '/headers/idempotency-key', message: 'is required' }],
    });
  });

  it('lists every invalid field of the body', async () => {
    const response = await authorize(setup(), {
      token: 'tok_visa',
      amount: { amount: 0, currency: 'usd' },
    });
    expect(response.statusCode).toBe(400);
    const problem = response.json<{ code: string; errors: { path: string }[] }>();
    expect(problem.code).toBe('VALIDATION_FAILED');
    expect(problem.errors.map((error) => error.path).sort()).toEqual([
      '/body/amount/amount',
      '/body/amount/currency',
      '/body/reference',
    ]);
  });

  it('frees the key when the request deadline cuts tok_slow short', async () => {
    const app = setup({ REQUEST_TIMEOUT_MS: '50ms', PSP_SANDBOX_SLOW_DELAY_MS: '5s' });
    const slowBody = { ...body, token: 'tok_slow' };
    const first = await authorize(app, slowBody, 'k-cut');
    expect(first.statusCode).toBe(503);
    // Not IDEMPOTENCY_KEY_IN_USE: nothing was decided, so the retry is processed afresh.
    const retry = await authorize(app, slowBody, 'k-cut');
    expect(retry.statusCode).toBe(503);
    expect(retry.json()).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
  });

  it('counts authorizations by outcome on /metrics', async () => {
    const app = setup();
    await authorize(app, body, 'k-m1');
    await authorize(app, { ...body, token: 'tok_chargeDeclined' }, 'k-m2');
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(
      /psp_sandbox_authorizations_total\{[^}]*outcome="approve"[^}]*\} 1/,
    );
    expect(metrics.body).toMatch(
      /psp_sandbox_authorizations_total\{[^}]*outcome="card_declined"[^}]*\} 1/,
    );
  });

  it('serves the operational routes', async () => {
    const app = setup();
    expect((await app.inject({ method: 'GET', url: '/livez' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({
      status: 'ready',
      checks: {},
    });
  });
});
