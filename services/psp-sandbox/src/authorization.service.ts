import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Meter } from '@opentelemetry/api';
import { decide, type Authorization, type AuthorizationRequest } from './authorization';
import { cardDeclined, insufficientFunds, invalidCardToken } from './errors';

/** What the authorization use case needs. */
export interface AuthorizationServiceDeps {
  /** How long `tok_slow` takes. */
  readonly slowDelayMs: number;
  readonly meter: Meter;
  readonly now?: () => Date;
  readonly newId?: () => string;
  /** Waits `ms`, or rejects when `signal` aborts. Default: a timer. */
  readonly wait?: (ms: number, signal: AbortSignal | undefined) => Promise<unknown>;
}

export interface AuthorizationService {
  /**
   * Approves or declines like a card network would for the test token. Throws CARD_DECLINED,
   * INSUFFICIENT_FUNDS or INVALID_CARD_TOKEN; rejects with an AbortError if `signal` aborts the wait.
   */
  authorize(request: AuthorizationRequest, signal?: AbortSignal): Promise<Authorization>;
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
  } = deps;
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
        case 'approve':
          if (decision.delayed) await wait(slowDelayMs, signal);
          return {
            id: newId(),
            status: 'approved',
            amount: { amount: request.amount.amount, currency: request.amount.currency },
            reference: request.reference,
            createdAt: now().toISOString(),
          };
      }
    },
  };
}
