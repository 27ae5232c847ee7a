import { isAppError } from '@bazaar/errors';
import type { Config } from './config';
import { createHttpClient, type HttpClient, type HttpClientLogger } from '@bazaar/http-client';
import {
  ProcessorUnavailableError,
  type AuthorizeResult,
  type DeclineCode,
  type OperationResult,
  type PaymentProcessor,
} from './processor';

export interface PspSandboxProcessorOptions {
  readonly baseUrl: string;
  /** Deadline of one operation, all retries included. Must exceed the slowest test card (3 s). */
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  /** Consecutive failed attempts that open the breaker. */
  readonly breakerFailures: number;
  /** How long the breaker stays open before one probe call is let through. */
  readonly breakerHalfOpenAfterMs: number;
  readonly connections: number;
  readonly logger?: HttpClientLogger;
}

const declineCodes: ReadonlySet<string> = new Set<DeclineCode>([
  'CARD_DECLINED',
  'INSUFFICIENT_FUNDS',
  'INVALID_CARD_TOKEN',
]);

interface ProblemBody {
  readonly code?: unknown;
  readonly detail?: unknown;
  readonly reason?: unknown;
}

function problemOf(body: unknown): ProblemBody {
  return typeof body === 'object' && body !== null ? body : {};
}

function codeOf(body: unknown): string {
  const { code } = problemOf(body);
  return typeof code === 'string' ? code : '';
}

/** The processor behind services/psp-sandbox (contracts/http/psp-sandbox.openapi.yaml). */
/** The psp-sandbox processor as the service's config describes it (main.ts and the test fixture). */
export function pspSandboxProcessorFromConfig(
  config: Pick<
    Config,
    | 'PSP_URL'
    | 'PSP_TIMEOUT_MS'
    | 'PSP_MAX_ATTEMPTS'
    | 'PSP_BREAKER_FAILURES'
    | 'PSP_BREAKER_HALF_OPEN_MS'
    | 'PSP_CONNECTIONS'
  >,
  logger?: HttpClientLogger,
): PaymentProcessor {
  return createPspSandboxProcessor({
    baseUrl: config.PSP_URL,
    timeoutMs: config.PSP_TIMEOUT_MS,
    maxAttempts: config.PSP_MAX_ATTEMPTS,
    breakerFailures: config.PSP_BREAKER_FAILURES,
    breakerHalfOpenAfterMs: config.PSP_BREAKER_HALF_OPEN_MS,
    connections: config.PSP_CONNECTIONS,
    ...(logger === undefined ? {} : { logger }),
  });
}

export function createPspSandboxProcessor(options: PspSandboxProcessorOptions): PaymentProcessor {
  const http: HttpClient = createHttpClient({
    name: 'psp-sandbox',
    baseUrl: options.baseUrl,
    timeoutMs: options.timeoutMs,
    retry: { maxAttempts: options.maxAttempts, baseDelayMs: 50, maxDelayMs: 500 },
    breaker: {
      consecutiveFailures: options.breakerFailures,
      halfOpenAfterMs: options.breakerHalfOpenAfterMs,
    },
    connections: options.connections,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });

  async function post(path: string, body: unknown, idempotencyKey: string) {
    try {
      const response = await http.request({ method: 'POST', path, body, idempotencyKey });
      // A concurrent attempt with the same key is still running there: no decision yet.
      if (response.status === 409 && problemOf(response.body).code === 'IDEMPOTENCY_KEY_IN_USE') {
        throw new ProcessorUnavailableError('the processor is still processing this key', {
          isCircuitOpen: false,
        });
      }
      return response;
    } catch (error) {
      if (error instanceof ProcessorUnavailableError) throw error;
      if (isAppError(error, 'CIRCUIT_OPEN', 'UPSTREAM_TIMEOUT', 'UPSTREAM_FAILED')) {
        throw new ProcessorUnavailableError(`psp-sandbox: ${error.code}`, {
          isCircuitOpen: error.code === 'CIRCUIT_OPEN',
          cause: error,
        });
      }
      throw error;
    }
  }

  function unexpected(status: number, body: unknown): Error {
    // Never include the request: it carries the card token.
    return new Error(`psp-sandbox answered ${status} ${codeOf(body)}`.trim());
  }

  async function operation(path: string, body: unknown, key: string): Promise<OperationResult> {
    const response = await post(path, body, key);
    if (response.status >= 200 && response.status < 300) return { kind: 'done' };
    const problem = problemOf(response.body);
    if (response.status === 409 || response.status === 422 || response.status === 404) {
      return {
        kind: 'refused',
        reason: typeof problem.reason === 'string' ? problem.reason : codeOf(response.body),
        message: typeof problem.detail === 'string' ? problem.detail : 'refused by the processor',
      };
    }
    throw unexpected(response.status, response.body);
  }

  const idPath = (id: string) => `/v1/authorizations/${encodeURIComponent(id)}`;

  return {
    name: 'psp-sandbox',
    async authorize(input): Promise<AuthorizeResult> {
      const response = await post(
        '/v1/authorizations',
        { token: input.token, amount: input.amount, reference: input.reference },
        input.idempotencyKey,
      );
      const body = response.body as { id?: unknown } | undefined;
      if (response.status === 201 && typeof body?.id === 'string') {
        return { kind: 'approved', authorizationId: body.id };
      }
      const problem = problemOf(response.body);
      if (typeof problem.code === 'string' && declineCodes.has(problem.code)) {
        return {
          kind: 'declined',
          code: problem.code as DeclineCode,
          message: typeof problem.detail === 'string' ? problem.detail : 'The card was declined.',
        };
      }
      throw unexpected(response.status, response.body);
    },
    capture: (input) =>
      operation(
        `${idPath(input.authorizationId)}/capture`,
        { amount: input.amount },
        input.idempotencyKey,
      ),
    void: (input) => operation(`${idPath(input.authorizationId)}/void`, {}, input.idempotencyKey),
    refund: (input) =>
      operation(
        `${idPath(input.authorizationId)}/refunds`,
        { amount: input.amount },
        input.idempotencyKey,
      ),
    get isAvailable() {
      return http.breakerState !== 'open' && http.breakerState !== 'isolated';
    },
    close: () => http.close(),
  };
}
