import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  authorizationEntry,
  balancesOf,
  captureEntry,
  isBalanced,
  refundEntry,
  storedLines,
  voidEntry,
  type LedgerEntry,
} from './ledger';
import { authorized, capture, refund, voidPayment, type Payment } from './payment';

const at = new Date('2026-01-01T00:00:00.000Z');
const currencies = ['USD', 'EUR', 'JPY'] as const;

type Operation =
  | { kind: 'capture'; index: number }
  | { kind: 'void'; index: number }
  | { kind: 'refund'; index: number; amount: number };

const paymentArbitrary = fc.record({
  amount: fc.integer({ min: 1, max: 10_000_000 }),
  currency: fc.constantFrom(...currencies),
});

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ kind: fc.constant('capture' as const), index: fc.nat(30) }),
  fc.record({ kind: fc.constant('void' as const), index: fc.nat(30) }),
  fc.record({
    kind: fc.constant('refund' as const),
    index: fc.nat(30),
    amount: fc.integer({ min: -5, max: 10_000_000 }),
  }),
);

/** Runs operations through the pure state machine, booking each accepted one as the service does. */
function simulate(
  specs: readonly { amount: number; currency: string }[],
  operations: readonly Operation[],
) {
  const payments: Payment[] = specs.map((spec, index) =>
    authorized({
      id: `pay_${index}`,
      orderId: `ord_${index}`,
      userId: 'usr_1',
      amount: spec,
      authorizationId: `auth_${index}`,
      at,
    }),
  );
  const entries: LedgerEntry[] = payments.map((payment) => authorizationEntry(payment.amount));
  for (const operation of operations) {
    const index = operation.index % payments.length;
    const payment = payments[index];
    if (payment === undefined) continue;
    if (operation.kind === 'capture') {
      const result = capture(payment, at);
      if (result.ok) {
        entries.push(captureEntry(payment.amount, result.payment.capturedAmount));
        payments[index] = result.payment;
      }
    } else if (operation.kind === 'void') {
      const result = voidPayment(payment, at);
      if (result.ok) {
        entries.push(voidEntry(payment.amount));
        payments[index] = result.payment;
      }
    } else {
      const amount = { amount: operation.amount, currency: payment.amount.currency };
      const result = refund(payment, amount, at);
      if (result.ok) {
        entries.push(refundEntry(amount));
        payments[index] = result.payment;
      }
    }
  }
  return { payments, entries };
}

describe('ledger', () => {
  it('keeps captured − refunded = sales and open holds = authorized, per currency, exactly', () => {
    fc.assert(
      fc.property(
        fc.array(paymentArbitrary, { minLength: 1, maxLength: 30 }),
        fc.array(operationArbitrary, { maxLength: 200 }),
        (specs, operations) => {
          const { payments, entries } = simulate(specs, operations);
          expect(entries.every(isBalanced)).toBe(true);
          const balances = balancesOf(entries);
          for (const currency of currencies) {
            const mine = payments.filter((payment) => payment.amount.currency === currency);
            const paid = mine.reduce(
              (sum, payment) => sum + payment.capturedAmount - payment.refundedAmount,
              0,
            );
            const held = mine
              .filter((payment) => payment.status === 'AUTHORIZED')
              .reduce((sum, payment) => sum + payment.amount.amount, 0);
            expect(0 - (balances.get(`sales/${currency}`) ?? 0)).toBe(paid);
            expect(balances.get(`processor_receivable/${currency}`) ?? 0).toBe(paid);
            expect(balances.get(`card_authorizations/${currency}`) ?? 0).toBe(held);
            expect(0 - (balances.get(`customer_holds/${currency}`) ?? 0)).toBe(held);
          }
          for (const payment of payments) {
            expect(payment.refundedAmount).toBeLessThanOrEqual(payment.capturedAmount);
            expect(payment.refundedAmount).toBeGreaterThanOrEqual(0);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('builds balanced entries with debits positive and credits negative', () => {
    const usd = { amount: 1299, currency: 'USD' };
    expect(authorizationEntry(usd).lines).toEqual([
      { account: 'card_authorizations', currency: 'USD', amount: 1299 },
      { account: 'customer_holds', currency: 'USD', amount: -1299 },
    ]);
    expect(captureEntry(usd, 1299).lines).toHaveLength(4);
    for (const entry of [
      authorizationEntry(usd),
      captureEntry(usd, 1299),
      voidEntry(usd),
      refundEntry({ amount: 500, currency: 'USD' }),
    ]) {
      expect(isBalanced(entry)).toBe(true);
    }
  });

  it('tells an unbalanced entry apart', () => {
    expect(
      isBalanced({
        kind: 'refund',
        lines: [
          { account: 'sales', currency: 'USD', amount: 5 },
          { account: 'processor_receivable', currency: 'EUR', amount: -5 },
        ],
      }),
    ).toBe(false);
  });

  it('stores no zero lines', () => {
    expect(storedLines(authorizationEntry({ amount: 0, currency: 'USD' }))).toEqual([]);
  });
});
