import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Meter } from '@opentelemetry/api';
import {
  capture,
  decide,
  refund,
  voidAuthorization,
  type Authorization,
  type AuthorizationRecord,
  type AuthorizationRequest,
  type Money,
  type TransitionResult,
} from './authorization';
import {
  authorizationNotFound,
  cardDeclined,
  insufficientFunds,
  invalidCardToken,
  operationRefused,
} from './errors';

/** What the authorization use case needs. */
export interface AuthorizationServiceDeps {
  /** How long `tok_slow` takes. */
  readonly slowDelayMs: number;
  readonly meter: Meter;
  readonly now?: () => Date;
  readonly newId?: () => string;
  /** Waits `ms`, or rejects when `signal` aborts. Default: a timer. */
  readonly wait?: (ms: number, signal: AbortSignal | undefined) => Promise<unknown>;
  /** Where approved authorizations are kept; a new in-memory map by default. */
  readonly records?: Map<string, AuthorizationRecord>;
  /** Most authorizations kept; the oldest are forgotten first, so memory stays bounded. */
  readonly maxRecords?: number;
}

export interface AuthorizationService {
  /**
   * Approves or declines like a card network would for the test token. Throws CARD_DECLINED,
   * INSUFFICIENT_FUNDS or INVALID_CARD_TOKEN; rejects with an AbortError if `signal` aborts the wait.
   */
  authorize(request: AuthorizationRequest, signal?: AbortSignal): Promise<Authorization>;
  /** Captures `amount` of an approved authorization. NOT_FOUND, CONFLICT or UNPROCESSABLE otherwise. */
  capture(id: string, amount: Money): AuthorizationRecord;
  /** Releases an approved authorization. */
  void(id: string): AuthorizationRecord;
  /** Refunds part or all of a captured authorization. */
  refund(id: string, amount: Money): AuthorizationRecord;
  /** The processor's record of authorizations, optionally only those of one caller reference. */
  list(reference?: string): AuthorizationRecord[];
}

/** An opaque authorization id: `auth_` and 16 random bytes in base64url. */
export function newAuthorizationId(): string {
  return `auth_${randomBytes(16).toString('base64url')}`;
}

export function createAuthorizationService(deps: AuthorizationServiceDeps): AuthorizationService {
  const {
    slowDelayMs,
    meter,
    now = () => new Date(),
    newId = newAuthorizationId,
    wait = (ms, signal) => sleep(ms, undefined, { signal }),
    records = new Map<string, AuthorizationRecord>(),
    maxRecords = 100_000,
  } = deps;

  function apply(id: string, transition: (record: AuthorizationRecord) => TransitionResult) {
    const record = records.get(id);
    if (record === undefined) throw authorizationNotFound();
    const result = transition(record);
    if (!result.ok) throw operationRefused(result.refusal);
    records.set(id, result.record);
    return result.record;
  }
  const outcomes = meter.createCounter('psp_sandbox.authorizations', {
    description: 'Authorization requests decided, by outcome.',
  });

  return {
    async authorize(request, signal) {
      const decision = decide(request.token);
      outcomes.add(1, {
        outcome: decision.kind === 'decline' ? decision.reason : decision.kind,
      });
      switch (decision.kind) {
        case 'unknown_token':
          throw invalidCardToken();
        case 'decline':
          throw decision.reason === 'card_declined' ? cardDeclined() : insufficientFunds();
        case 'approve': {
          if (decision.delayed) await wait(slowDelayMs, signal);
          const authorization: Authorization = {
            id: newId(),
            status: 'approved',
            amount: { amount: request.amount.amount, currency: request.amount.currency },
            reference: request.reference,
            createdAt: now().toISOString(),
          };
          for (const oldest of records.keys()) {
            if (records.size < maxRecords) break;
            records.delete(oldest);
          }
          records.set(authorization.id, {
            ...authorization,
            capturedAmount: 0,
            refundedAmount: 0,
            updatedAt: authorization.createdAt,
          });
          return authorization;
        }
      }
    },
    capture: (id, amount) => apply(id, (record) => capture(record, amount, now())),
    void: (id) => apply(id, (record) => voidAuthorization(record, now())),
    refund: (id, amount) => apply(id, (record) => refund(record, amount, now())),
    list(reference) {
      const all = [...records.values()];
      return reference === undefined ? all : all.filter((record) => record.reference === reference);
    },
  };
}
