import { describe, expect, it } from 'vitest';
import {
  authorized,
  capture,
  checkRefund,
  paymentIdOf,
  processorKeyOf,
  refund,
  refundableAmount,
  refundIdOf,
  unauthorized,
  voidPayment,
  type Payment,
} from './payment';

const at = new Date('2026-01-01T00:00:00.000Z');
const later = new Date('2026-01-01T00:01:00.000Z');

function anAuthorizedPayment(amount = 1000): Payment {
  return authorized({
    id: 'pay_1',
    orderId: 'ord_1',
    userId: 'usr_1',
    amount: { amount, currency: 'USD' },
    authorizationId: 'auth_1',
    at,
  });
}

function captured(amount = 1000): Payment {
  const result = capture(anAuthorizedPayment(amount), later);
  if (!result.ok) throw new Error('capture refused');
  return result.payment;
}

describe('payment ids', () => {
  it('derives one stable payment id per order, so retries reuse the processor key', () => {
    expect(paymentIdOf('ord_abc')).toBe(paymentIdOf('ord_abc'));
    expect(paymentIdOf('ord_abc')).not.toBe(paymentIdOf('ord_abd'));
    expect(paymentIdOf('ord_abc')).toMatch(/^pay_[A-Za-z0-9_-]{22}$/);
    expect(processorKeyOf('pay_1', 'authorize')).toBe('pay_1:authorize');
  });

  it('derives refund ids from payment and key', () => {
    expect(refundIdOf('pay_1', 'k')).toBe(refundIdOf('pay_1', 'k'));
    expect(refundIdOf('pay_1', 'k')).not.toBe(refundIdOf('pay_2', 'k'));
    expect(refundIdOf('pay_1', 'k')).toMatch(/^rfd_[A-Za-z0-9_-]{22}$/);
  });
});

describe('payment state machine', () => {
  it('captures an authorized payment in full, once', () => {
    const result = capture(anAuthorizedPayment(), later);
    expect(result).toMatchObject({
      ok: true,
      payment: { status: 'CAPTURED', capturedAmount: 1000, updatedAt: later },
    });
    expect(capture(captured(), later)).toEqual({ ok: false, refusal: 'not_capturable' });
  });

  it('voids only an authorized payment', () => {
    expect(voidPayment(anAuthorizedPayment(), later)).toMatchObject({
      ok: true,
      payment: { status: 'VOIDED' },
    });
    expect(voidPayment(captured(), later)).toEqual({ ok: false, refusal: 'not_voidable' });
  });

  it('refuses everything on a failed or cancelled payment', () => {
    for (const status of ['FAILED', 'CANCELLED'] as const) {
      const payment = unauthorized({
        id: 'pay_2',
        orderId: 'ord_2',
        userId: 'usr_1',
        amount: { amount: 10, currency: 'USD' },
        status,
        failure: null,
        at,
      });
      expect(capture(payment, later).ok).toBe(false);
      expect(voidPayment(payment, later).ok).toBe(false);
      expect(refund(payment, { amount: 1, currency: 'USD' }, later).ok).toBe(false);
    }
  });

  it('refunds partially, then fully, never beyond the capture', () => {
    const first = refund(captured(), { amount: 300, currency: 'USD' }, later);
    expect(first).toMatchObject({
      ok: true,
      payment: { status: 'PARTIALLY_REFUNDED', refundedAmount: 300 },
    });
    if (!first.ok) return;
    expect(refund(first.payment, { amount: 701, currency: 'USD' }, later)).toEqual({
      ok: false,
      refusal: 'refund_exceeds_captured',
    });
    const rest = refund(first.payment, { amount: 700, currency: 'USD' }, later);
    expect(rest).toMatchObject({ ok: true, payment: { status: 'REFUNDED', refundedAmount: 1000 } });
    if (!rest.ok) return;
    expect(refund(rest.payment, { amount: 1, currency: 'USD' }, later).ok).toBe(false);
  });

  it('counts refunds in flight as reserved', () => {
    expect(refundableAmount(captured(), 400)).toBe(600);
    expect(checkRefund(captured(), { amount: 601, currency: 'USD' }, 400)).toBe(
      'refund_exceeds_captured',
    );
    expect(checkRefund(captured(), { amount: 600, currency: 'USD' }, 400)).toBeNull();
  });

  it('refuses another currency, a zero or fractional amount, and an uncaptured payment', () => {
    expect(checkRefund(captured(), { amount: 1, currency: 'EUR' })).toBe('currency_mismatch');
    expect(checkRefund(captured(), { amount: 0, currency: 'USD' })).toBe('invalid_amount');
    expect(checkRefund(captured(), { amount: 1.5, currency: 'USD' })).toBe('invalid_amount');
    expect(checkRefund(anAuthorizedPayment(), { amount: 1, currency: 'USD' })).toBe(
      'not_refundable',
    );
  });
});
