import type { Money } from './payment';

/**
 * The ledger's accounts. Debits are positive, credits negative; every transaction sums to zero per
 * currency.
 * - `card_authorizations` (debit): amounts the processor holds on customers' cards for us;
 * - `customer_holds` (credit): its counterpart, what customers have committed but not paid;
 * - `processor_receivable` (debit): captured money the processor owes us (pays out later);
 * - `sales` (credit): money taken for orders, net of refunds.
 * So `-balance(sales)` is captured − refunded, per currency: the paid orders' totals.
 */
export const accounts = [
  'card_authorizations',
  'customer_holds',
  'processor_receivable',
  'sales',
] as const;
export type Account = (typeof accounts)[number];

export type LedgerKind = 'authorization' | 'capture' | 'void' | 'refund';

export interface LedgerLine {
  readonly account: Account;
  readonly currency: string;
  /** Minor units; positive = debit, negative = credit, never zero. */
  readonly amount: number;
}

export interface LedgerEntry {
  readonly kind: LedgerKind;
  readonly lines: readonly LedgerLine[];
}

function line(account: Account, currency: string, amount: number): LedgerLine {
  return { account, currency, amount };
}

/** The hold of an authorization. */
export function authorizationEntry(amount: Money): LedgerEntry {
  return {
    kind: 'authorization',
    lines: [
      line('card_authorizations', amount.currency, amount.amount),
      line('customer_holds', amount.currency, -amount.amount),
    ],
  };
}

/** Releasing the hold of `authorized` and taking `captured` of it. */
export function captureEntry(authorized: Money, captured: number): LedgerEntry {
  const { currency } = authorized;
  return {
    kind: 'capture',
    lines: [
      line('card_authorizations', currency, -authorized.amount),
      line('customer_holds', currency, authorized.amount),
      line('processor_receivable', currency, captured),
      line('sales', currency, -captured),
    ],
  };
}

/** Releasing the hold of a voided authorization. */
export function voidEntry(authorized: Money): LedgerEntry {
  return {
    kind: 'void',
    lines: [
      line('card_authorizations', authorized.currency, -authorized.amount),
      line('customer_holds', authorized.currency, authorized.amount),
    ],
  };
}

/** Giving `amount` back to the customer. */
export function refundEntry(amount: Money): LedgerEntry {
  return {
    kind: 'refund',
    lines: [
      line('sales', amount.currency, amount.amount),
      line('processor_receivable', amount.currency, -amount.amount),
    ],
  };
}

/** The lines that are stored: zero amounts (e.g. a zero-total order) carry no information. */
export function storedLines(entry: LedgerEntry): LedgerLine[] {
  return entry.lines.filter((entryLine) => entryLine.amount !== 0);
}

/** Whether every currency of the entry sums to zero. */
export function isBalanced(entry: LedgerEntry): boolean {
  const sums = new Map<string, number>();
  for (const entryLine of entry.lines) {
    sums.set(entryLine.currency, (sums.get(entryLine.currency) ?? 0) + entryLine.amount);
  }
  return [...sums.values()].every((sum) => sum === 0);
}

/** Account balances per `account/currency` after `entries`. */
export function balancesOf(entries: readonly LedgerEntry[]): Map<string, number> {
  const balances = new Map<string, number>();
  for (const entry of entries) {
    for (const entryLine of entry.lines) {
      const key = `${entryLine.account}/${entryLine.currency}`;
      balances.set(key, (balances.get(key) ?? 0) + entryLine.amount);
    }
  }
  return balances;
}
