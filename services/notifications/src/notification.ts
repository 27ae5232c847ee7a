import { createHash, randomBytes } from 'node:crypto';
import type {
  EventTypes,
  Money,
  OrderCancelledV1,
  OrderConfirmedV1,
  PaymentRefundedV1,
  UserRegisteredV1,
} from '@bazaar/contracts';

/**
 * Transactional messages are always sent (they answer something the user did); marketing ones
 * only while the user has not opted out; operational ones go to the operators, never to users.
 */
export type Category = 'transactional' | 'marketing' | 'operational';

/** A message template in `templates/` (`<name>.subject.hbs`, `.text.hbs`, `.html.hbs`, `.inbox.hbs`). */
export type TemplateName =
  'welcome' | 'order-confirmed' | 'order-cancelled' | 'payment-refunded' | 'announcement' | 'alert';

/** The event types this service turns into messages. */
export const HANDLED_EVENT_TYPES = [
  'user.registered.v1',
  'order.confirmed.v1',
  'order.cancelled.v1',
  'payment.refunded.v1',
] as const satisfies readonly (keyof EventTypes)[];

export type HandledEvent =
  UserRegisteredV1 | OrderConfirmedV1 | OrderCancelledV1 | PaymentRefundedV1;

/** What one event means for one user: an inbox entry and an email, both from one template. */
export interface UserNotification {
  readonly userId: string;
  readonly template: TemplateName;
  readonly category: Category;
  /** The template's values; never holds the recipient's address (resolved at send time). */
  readonly params: Readonly<Record<string, unknown>>;
}

const CANCEL_REASONS: Readonly<Record<OrderCancelledV1['data']['reason'], string>> = {
  PAYMENT_DECLINED: 'the payment was declined',
  PAYMENT_TIMEOUT: 'the payment was not confirmed in time',
  PAYMENT_UNAVAILABLE: 'the payment could not be processed',
  USER_CANCELLED: 'you cancelled it',
};

/** Maps a consumed event to the notification its user receives. */
export function notificationOf(event: HandledEvent): UserNotification {
  switch (event.type) {
    case 'user.registered.v1':
      return {
        userId: event.data.userId,
        template: 'welcome',
        category: 'transactional',
        params: { registeredAt: event.data.registeredAt },
      };
    case 'order.confirmed.v1':
      return {
        userId: event.data.userId,
        template: 'order-confirmed',
        category: 'transactional',
        params: {
          orderId: event.data.orderId,
          total: formatMoney(event.data.total),
          confirmedAt: event.data.confirmedAt,
        },
      };
    case 'order.cancelled.v1':
      return {
        userId: event.data.userId,
        template: 'order-cancelled',
        category: 'transactional',
        params: {
          orderId: event.data.orderId,
          total: formatMoney(event.data.total),
          reason: CANCEL_REASONS[event.data.reason],
          cancelledAt: event.data.cancelledAt,
        },
      };
    case 'payment.refunded.v1':
      return {
        userId: event.data.userId,
        template: 'payment-refunded',
        category: 'transactional',
        params: {
          orderId: event.data.orderId,
          amount: formatMoney(event.data.amount),
          totalRefunded: formatMoney(event.data.totalRefunded),
          refundedAt: event.data.refundedAt,
        },
      };
  }
}

/** `$64.99` — money is integer minor units; currencies with other exponents are formatted by Intl. */
export function formatMoney(money: Money): string {
  const format = new Intl.NumberFormat('en-US', { style: 'currency', currency: money.currency });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(money.amount / 10 ** digits);
}

/** Whether a message of `category` goes out to a user with these preferences. */
export function isWanted(category: Category, preferences: { readonly marketingEmail: boolean }) {
  return category !== 'marketing' || preferences.marketingEmail;
}

const ID_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A new id with a type prefix (`ntf_` inbox entries, `dlv_` deliveries): 10 Crockford base32
 * characters of time (ids sort roughly by creation, as ULIDs do) and 16 random ones (80 bits).
 */
export function newId(prefix: 'ntf' | 'dlv', now: Date = new Date()): string {
  let time = now.getTime();
  let timePart = '';
  for (let index = 0; index < 10; index += 1) {
    timePart = ID_ALPHABET.charAt(time % 32) + timePart;
    time = Math.floor(time / 32);
  }
  let randomPart = '';
  for (const byte of randomBytes(16)) randomPart += ID_ALPHABET.charAt(byte % 32);
  return `${prefix}_${timePart}${randomPart}`;
}

export const INBOX_ID_PATTERN = /^ntf_[0-9A-Z]{26}$/;

/**
 * The RFC 5322 Message-ID of the one message for (source, recipient): derived, not random, so every
 * attempt — and every instance — sends the same id, and a reconciliation lookup can find it.
 */
export function messageIdFor(sourceKey: string, recipientKey: string, domain: string): string {
  const digest = createHash('sha256').update(`${sourceKey}\n${recipientKey}`).digest('hex');
  return `<${digest.slice(0, 40)}@${domain}>`;
}

export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

/**
 * Delay before attempt `failedAttempts + 1`: exponential from `baseMs`, capped at `maxMs`, with
 * "equal jitter" (half fixed, half random) so instances retrying after one outage spread out.
 */
export function backoffDelayMs(
  failedAttempts: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(failedAttempts - 1, 0), 30);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** What to do after a failed attempt. */
export type FailureDecision =
  { readonly action: 'retry'; readonly delayMs: number } | { readonly action: 'dead' };

export function decideAfterFailure(
  attempts: number,
  isPermanent: boolean,
  maxAttempts: number,
  policy: BackoffPolicy,
  random?: () => number,
): FailureDecision {
  if (isPermanent || attempts >= maxAttempts) return { action: 'dead' };
  return { action: 'retry', delayMs: backoffDelayMs(attempts, policy, random) };
}

/** A position in "newest first" order: the last entry of the previous page. */
export interface InboxCursor {
  readonly createdAt: Date;
  readonly id: string;
}

export function encodeCursor(cursor: InboxCursor): string {
  return Buffer.from(`${cursor.createdAt.toISOString()}|${cursor.id}`, 'utf8').toString(
    'base64url',
  );
}

/** The cursor, or undefined when `raw` is not one this service issued. */
export function decodeCursor(raw: string): InboxCursor | undefined {
  const text = Buffer.from(raw, 'base64url').toString('utf8');
  const separator = text.indexOf('|');
  if (separator < 0) return undefined;
  const createdAt = new Date(text.slice(0, separator));
  const id = text.slice(separator + 1);
  if (Number.isNaN(createdAt.getTime()) || !INBOX_ID_PATTERN.test(id)) return undefined;
  return { createdAt, id };
}
