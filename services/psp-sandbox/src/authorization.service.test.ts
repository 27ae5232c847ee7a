import { metrics } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { createAuthorizationService, newAuthorizationId } from './authorization.service';

const request = { token: 'tok_slow', amount: { amount: 500, currency: 'EUR' }, reference: 'r1' };

function service(wait?: (ms: number) => Promise<unknown>) {
  return createAuthorizationService({
    slowDelayMs: 3000,
    meter: metrics.getMeter('test'),
    now: () => new Date('2026-01-02T03:04:05.000Z'),
    newId: () => 'auth_fixed',
    ...(wait === undefined ? {} : { wait }),
  });
}

describe('authorization service', () => {
  it('approves tok_slow only once the configured delay has passed', async () => {
    const waits: number[] = [];
    let elapse: () => void = () => undefined;
    const authorizing = service((ms) => {
      waits.push(ms);
      return new Promise<void>((resolve) => {
        elapse = resolve;
      });
    }).authorize(request);
    let settled = false;
    void authorizing.then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(waits).toEqual([3000]);
    expect(settled).toBe(false);
    elapse();
    expect(await authorizing).toEqual({
      id: 'auth_fixed',
      status: 'approved',
      amount: { amount: 500, currency: 'EUR' },
      reference: 'r1',
      createdAt: '2026-01-02T03:04:05.000Z',
    });
  });

  it('approves tok_visa without waiting', async () => {
    const waits: number[] = [];
    const approved = await service((ms) => Promise.resolve(waits.push(ms))).authorize({
      ...request,
      token: 'tok_visa',
    });
    expect(approved.status).toBe('approved');
    expect(waits).toEqual([]);
  });

  it('gives up when the signal aborts the wait', async () => {
    const controller = new AbortController();
    const authorizing = service().authorize(request, controller.signal);
    controller.abort(new Error('deadline'));
    await expect(authorizing).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('throws the decline codes', async () => {
    await expect(
      service().authorize({ ...request, token: 'tok_chargeDeclined' }),
    ).rejects.toMatchObject({
      code: 'CARD_DECLINED',
      status: 402,
    });
    await expect(
      service().authorize({ ...request, token: 'tok_insufficientFunds' }),
    ).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS', status: 402 });
    await expect(service().authorize({ ...request, token: 'tok_x' })).rejects.toMatchObject({
      code: 'INVALID_CARD_TOKEN',
      status: 422,
    });
  });

  it('makes unique, opaque ids', () => {
    const ids = new Set(Array.from({ length: 1000 }, newAuthorizationId));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^auth_[A-Za-z0-9_-]{22}$/);
  });
});
