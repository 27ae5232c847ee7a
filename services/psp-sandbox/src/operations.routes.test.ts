import { createLogger } from '@bazaar/logging';
import { startTelemetry } from '@bazaar/telemetry';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from './app';
import { readConfig } from './config';

// Capture, void, refund, the processor's record and fault injection, through the real app.

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

function setup(env: Record<string, string> = {}) {
  const app = buildApp({
    config: readConfig({ NODE_ENV: 'test', ...env }),
    logger: createLogger({ service: 'psp-sandbox', level: 'silent' }),
    telemetry: startTelemetry({ serviceName: 'psp-sandbox' }),
  });
  apps.push(app);
  return app;
}

let keys = 0;
function post(app: FastifyInstance, url: string, payload: unknown, key = `k-${(keys += 1)}`) {
  return app.inject({
    method: 'POST',
    url,
    headers: { 'idempotency-key': key },
    payload: payload as Record<string, unknown>,
  });
}

async function authorize(app: FastifyInstance, amount = 1000, reference = 'pay_1') {
  const response = await post(app, '/v1/authorizations', {
    token: 'tok_visa',
    amount: { amount, currency: 'USD' },
    reference,
  });
  return response.json<{ id: string }>().id;
}

const usd = (amount: number) => ({ amount: { amount, currency: 'USD' } });

async function recordOf(app: FastifyInstance, reference: string) {
  const list = await app.inject({
    method: 'GET',
    url: `/v1/authorizations?reference=${reference}`,
  });
  return list.json<{ items: Record<string, unknown>[] }>().items;
}

describe('capture, void, refund', () => {
  it('captures, refunds partially and fully, never beyond the capture', async () => {
    const app = setup();
    const id = await authorize(app);
    expect((await post(app, `/v1/authorizations/${id}/capture`, usd(1000))).statusCode).toBe(200);
    expect((await post(app, `/v1/authorizations/${id}/refunds`, usd(400))).statusCode).toBe(201);
    const tooMuch = await post(app, `/v1/authorizations/${id}/refunds`, usd(601));
    expect(tooMuch.statusCode).toBe(422);
    expect(tooMuch.json()).toMatchObject({ code: 'UNPROCESSABLE', reason: 'amount_too_large' });
    expect((await post(app, `/v1/authorizations/${id}/refunds`, usd(600))).statusCode).toBe(201);
    expect(await recordOf(app, 'pay_1')).toEqual([
      expect.objectContaining({
        id,
        status: 'captured',
        capturedAmount: 1000,
        refundedAmount: 1000,
      }),
    ]);
  });

  it('voids an approved authorization; a voided one cannot be captured, a captured one not voided', async () => {
    const app = setup();
    const voided = await authorize(app, 500, 'pay_v');
    expect((await post(app, `/v1/authorizations/${voided}/void`, {})).statusCode).toBe(200);
    const capture = await post(app, `/v1/authorizations/${voided}/capture`, usd(500));
    expect(capture.statusCode).toBe(409);
    expect(capture.json()).toMatchObject({ code: 'CONFLICT', reason: 'not_capturable' });
    const captured = await authorize(app, 500, 'pay_c');
    await post(app, `/v1/authorizations/${captured}/capture`, usd(500));
    const lateVoid = await post(app, `/v1/authorizations/${captured}/void`, {});
    expect(lateVoid.json()).toMatchObject({ reason: 'not_voidable' });
  });

  it('refuses a capture above the authorization, another currency, an unknown id', async () => {
    const app = setup();
    const id = await authorize(app, 500);
    expect((await post(app, `/v1/authorizations/${id}/capture`, usd(501))).json()).toMatchObject({
      reason: 'amount_too_large',
    });
    const euros = await post(app, `/v1/authorizations/${id}/capture`, {
      amount: { amount: 5, currency: 'EUR' },
    });
    expect(euros.json()).toMatchObject({ reason: 'currency_mismatch' });
    const unknown = await post(app, '/v1/authorizations/auth_nope/capture', usd(1));
    expect(unknown.statusCode).toBe(404);
  });

  it('replays a capture for the same key, and refuses the key on another route', async () => {
    const app = setup();
    const id = await authorize(app);
    const first = await post(app, `/v1/authorizations/${id}/capture`, usd(1000), 'cap-1');
    const again = await post(app, `/v1/authorizations/${id}/capture`, usd(1000), 'cap-1');
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    const reused = await post(app, `/v1/authorizations/${id}/refunds`, usd(10), 'cap-1');
    expect(reused.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });
});

describe('fault injection', () => {
  it('fail_before: 503 and nothing done; the retry with the same key is processed afresh', async () => {
    const app = setup();
    await app.inject({
      method: 'POST',
      url: '/v1/sandbox/faults',
      payload: { mode: 'fail_before', operation: 'authorize', count: 1 },
    });
    const body = { token: 'tok_visa', amount: { amount: 5, currency: 'USD' }, reference: 'pay_f' };
    expect((await post(app, '/v1/authorizations', body, 'f-1')).statusCode).toBe(503);
    expect(await recordOf(app, 'pay_f')).toEqual([]);
    expect((await post(app, '/v1/authorizations', body, 'f-1')).statusCode).toBe(201);
    expect(await recordOf(app, 'pay_f')).toHaveLength(1);
  });

  it('fail_after: done and stored, 503 to the caller; the retry gets the stored approval', async () => {
    const app = setup();
    await app.inject({
      method: 'POST',
      url: '/v1/sandbox/faults',
      payload: { mode: 'fail_after', count: 1 },
    });
    const body = { token: 'tok_visa', amount: { amount: 5, currency: 'USD' }, reference: 'pay_a' };
    expect((await post(app, '/v1/authorizations', body, 'a-1')).statusCode).toBe(503);
    expect(await recordOf(app, 'pay_a')).toHaveLength(1);
    const retry = await post(app, '/v1/authorizations', body, 'a-1');
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(await recordOf(app, 'pay_a')).toHaveLength(1);
  });

  it('counts faults down, lists and clears them', async () => {
    const app = setup();
    await app.inject({
      method: 'POST',
      url: '/v1/sandbox/faults',
      payload: { mode: 'fail_before', operation: 'capture', count: 2 },
    });
    const listed = await app.inject({ method: 'GET', url: '/v1/sandbox/faults' });
    expect(listed.json()).toEqual({
      items: [{ mode: 'fail_before', operation: 'capture', count: 2 }],
    });
    // Authorizations are not hit by a capture fault.
    const id = await authorize(app);
    expect(id).toMatch(/^auth_/);
    expect((await post(app, `/v1/authorizations/${id}/capture`, usd(1))).statusCode).toBe(503);
    expect((await post(app, `/v1/authorizations/${id}/capture`, usd(1))).statusCode).toBe(503);
    expect((await post(app, `/v1/authorizations/${id}/capture`, usd(1))).statusCode).toBe(200);
    await app.inject({
      method: 'POST',
      url: '/v1/sandbox/faults',
      payload: { mode: 'fail_before' },
    });
    expect((await app.inject({ method: 'DELETE', url: '/v1/sandbox/faults' })).statusCode).toBe(
      204,
    );
    expect((await post(app, `/v1/authorizations/${id}/void`, {})).statusCode).toBe(409);
  });

  it('validates fault rules', async () => {
    const response = await setup().inject({
      method: 'POST',
      url: '/v1/sandbox/faults',
      payload: { mode: 'explode' },
    });
    expect(response.statusCode).toBe(400);
  });

  it('is off in production unless enabled', async () => {
    const production = setup({ NODE_ENV: 'production' });
    const refused = await production.inject({
      method: 'POST',
      url: '/v1/sandbox/faults',
      payload: { mode: 'fail_before' },
    });
    expect(refused.statusCode).toBe(404);
    const enabled = setup({ NODE_ENV: 'production', PSP_SANDBOX_FAULTS_ENABLED: 'true' });
    const armed = await enabled.inject({
      method: 'POST',
      url: '/v1/sandbox/faults',
      payload: { mode: 'fail_before' },
    });
    expect(armed.statusCode).toBe(201);
  });
});
