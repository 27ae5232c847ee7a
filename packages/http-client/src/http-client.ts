import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '@bazaar/errors';
import { SpanKind, SpanStatusCode, context, metrics, propagation, trace } from '@opentelemetry/api';
import type { Attributes, ObservableResult, Span } from '@opentelemetry/api';
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  IsolatedCircuitError,
  circuitBreaker,
  handleWhen,
} from 'cockatiel';
import { Pool } from 'undici';
import { backoffDelayMs, parseRetryAfterMs } from './backoff';
import type { BackoffOptions } from './backoff';

/** HTTP methods the client sends. */
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

/** Retry policy. Retries happen only for idempotent requests; see {@link createHttpClient}. */
export interface RetryOptions extends BackoffOptions {
  /** Attempts in total, the first included; 1 disables retries. */
  readonly maxAttempts: number;
}

/** Circuit breaker policy: consecutive failures open it; after a pause one probe may close it again. */
export interface BreakerOptions {
  /** Consecutive failed attempts (network error, timeout, 5xx) that open the circuit. */
  readonly consecutiveFailures: number;
  /** How long the circuit stays open before one probe request is let through. */
  readonly halfOpenAfterMs: number;
}

/** The part of a pino-style logger the client uses. */
export interface HttpClientLogger {
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

/** Options of {@link createHttpClient}. */
export interface HttpClientOptions {
  /** The upstream's name (`psp-sandbox`, `users`): used in logs, spans (`peer.service`) and metrics. */
  readonly name: string;
  /** Origin and optional path prefix, e.g. `http://127.0.0.1:4010` or `http://users:3000/internal`. */
  readonly baseUrl: string;
  /** Default deadline of every call, covering all attempts, backoff pauses and reading the body. */
  readonly timeoutMs: number;
  readonly retry: RetryOptions;
  readonly breaker: BreakerOptions;
  /** Headers sent with every request (a request's own headers win). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly logger?: HttpClientLogger;
  /** Most sockets kept open to the upstream at once. Default 32. */
  readonly connections?: number;
}

/** Query parameters; `undefined` values are left out. */
export type QueryParameters = Readonly<Record<string, string | number | boolean | undefined>>;

/** One call of {@link HttpClient.request}. */
export interface HttpRequest {
  readonly method: HttpMethod;
  /** Path below the base URL, starting with `/`. */
  readonly path: string;
  readonly query?: QueryParameters;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent as JSON. */
  readonly body?: unknown;
  /** This call's deadline, instead of the client's `timeoutMs`. */
  readonly timeoutMs?: number;
  /**
   * Sent as the `Idempotency-Key` header, the same on every attempt; makes a POST or PATCH retryable.
   * An `Idempotency-Key` in `headers` has the same effect.
   */
  readonly idempotencyKey?: string;
  /** Cancels the call; the call then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** An upstream's answer with a status below 500 (see {@link HttpClient.request}). */
export interface HttpResponse {
  readonly status: number;
  /** Lower-cased names; repeated headers (`set-cookie`) as arrays. */
  readonly headers: Readonly<Record<string, string | string[]>>;
  /** The parsed body when the content type is JSON (`application/json`, `…+json`) and the body is not empty. */
  readonly body: unknown;
  /** The raw body. */
  readonly text: string;
}

/** Circuit breaker states, as reported for readiness and metrics. */
export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

/** A client for one upstream. */
export interface HttpClient {
  readonly name: string;
  /** The circuit breaker's state; `open` means calls fail fast with `CIRCUIT_OPEN`. */
  readonly breakerState: BreakerState;
  /**
   * Sends a request within a deadline, retrying when that is safe, through the circuit breaker.
   *
   * Resolves with the response for any status below 500, 4xx included, and for a 429 whose retries ran
   * out. Rejects with an `AppError`:
   * - `UPSTREAM_TIMEOUT` when the deadline passes (connecting, waiting, reading the body or between
   *   attempts);
   * - `UPSTREAM_FAILED` on a network error or a 5xx once retries are exhausted or not allowed, or when a
   *   JSON body does not parse; the cause is an {@link UpstreamStatusError} for a 5xx;
   * - `CIRCUIT_OPEN` without contacting the upstream while the breaker is open.
   *
   * When `signal` aborts, rejects with its reason.
   */
  request(request: HttpRequest): Promise<HttpResponse>;
  /** Closes the connections once in-flight requests finish. Further requests throw. */
  close(): Promise<void>;
}

/**
 * The `cause` of an `UPSTREAM_FAILED` error when the upstream answered 5xx: the last answer, with its body
 * parsed when it is JSON, for logs and for callers that need to look inside.
 */
export class UpstreamStatusError extends Error {
  override readonly name = 'UpstreamStatusError';

  constructor(
    message: string,
    readonly response: HttpResponse,
  ) {
    super(message);
  }
}

const IDEMPOTENT_METHODS: ReadonlySet<HttpMethod> = new Set([
  'GET',
  'HEAD',
  'PUT',
  'DELETE',
  'OPTIONS',
]);
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);
const DEFAULT_CONNECTIONS = 32;
const INSTRUMENTATION_SCOPE = '@bazaar/http-client';
// OpenTelemetry HTTP semantic conventions' boundaries for request durations, in seconds.
const DURATION_BUCKETS_SECONDS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

const BREAKER_STATES: Readonly<Record<CircuitState, BreakerState>> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/**
 * An attempt that the breaker counts as a failure: the upstream did not answer in time, the connection
 * failed, or it answered 5xx.
 */
class FailedAttempt extends Error {
  constructor(
    readonly kind: 'timeout' | 'network' | 'status',
    override readonly cause: unknown,
    readonly response?: HttpResponse,
  ) {
    super(kind);
  }
}

/** The caller's signal aborted; rethrown as its reason and never counted by the breaker. */
class CallerAbort extends Error {
  constructor(readonly reason: unknown) {
    super('aborted by caller');
  }
}

/**
 * Creates a client for one upstream over an undici keep-alive connection pool.
 *
 * - **Deadline:** every call has one (`timeoutMs`, or the request's), covering every attempt, the pauses
 *   between them and reading the body.
 * - **Retries:** only when repeating the request is safe — the method is idempotent (GET, HEAD, PUT,
 *   DELETE, OPTIONS) or the request carries an `Idempotency-Key` — and only after a network error, a
 *   502/503/504 or a 429, with full-jitter exponential backoff. `Retry-After` is honoured when it fits in
 *   the remaining deadline; otherwise the client gives up at once.
 * - **Circuit breaker:** `consecutiveFailures` failed attempts in a row (network errors, timeouts, 5xx; not
 *   4xx) open it; then calls fail fast with `CIRCUIT_OPEN` until `halfOpenAfterMs` has passed and one probe
 *   succeeds.
 * - **Tracing and metrics:** one CLIENT span per call, whose `traceparent` every attempt carries; each
 *   attempt is recorded in the `http.client.request.duration` histogram of the global meter, and the
 *   breaker state in `http.client.circuit_breaker.state`. Start telemetry before creating clients.
 *
 * @example
 * ```ts
 * const psp = createHttpClient({
 *   name: 'psp-sandbox',
 *   baseUrl: config.pspUrl,
 *   timeoutMs: 5000,
 *   retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000 },
 *   breaker: { consecutiveFailures: 5, halfOpenAfterMs: 10_000 },
 *   logger,
 * });
 * const { status, body } = await psp.request({
 *   method: 'POST',
 *   path: '/v1/authorizations',
 *   body: { token, amount },
 *   idempotencyKey: paymentId,
 * });
 * ```
 */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  validateOptions(options);
  const base = new URL(options.baseUrl);
  const basePath = base.pathname.replace(/\/+$/, '');
  const serverPort = Number(base.port || (base.protocol === 'https:' ? 443 : 80));
  const pool = new Pool(base.origin, {
    connections: options.connections ?? DEFAULT_CONNECTIONS,
  });
  const logger = options.logger;
  const peer = { 'peer.service': options.name };

  const breaker = circuitBreaker(
    handleWhen((error) => error instanceof FailedAttempt),
    {
      halfOpenAfter: options.breaker.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(options.breaker.consecutiveFailures),
    },
  );
  const breakerListeners = [
    breaker.onBreak(() => logger?.warn({ upstream: options.name }, 'circuit breaker opened')),
    breaker.onHalfOpen(() => logger?.info({ upstream: options.name }, 'circuit breaker probing')),
    breaker.onReset(() => logger?.info({ upstream: options.name }, 'circuit breaker closed')),
  ];

  const meter = metrics.getMeter(INSTRUMENTATION_SCOPE);
  const duration = meter.createHistogram('http.client.request.duration', {
    description: 'Duration of HTTP client requests, one per attempt.',
    unit: 's',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS_SECONDS },
  });
  const breakerGauge = meter.createObservableGauge('http.client.circuit_breaker.state', {
    description:
      'Circuit breaker state of an HTTP client: 1 for the current state, 0 for the others.',
  });
  const observeBreaker = (result: ObservableResult): void => {
    const current = BREAKER_STATES[breaker.state];
    for (const state of Object.values(BREAKER_STATES)) {
      result.observe(state === current ? 1 : 0, { ...peer, state });
    }
  };
  breakerGauge.addCallback(observeBreaker);

  let isClosed = false;

  /** One attempt: send, read the whole body, classify. Runs inside the breaker. */
  async function attempt(
    request: HttpRequest,
    path: string,
    headers: Record<string, string>,
    payload: string | undefined,
    signal: AbortSignal,
  ): Promise<HttpResponse> {
    const startedAt = performance.now();
    const attributes: Attributes = {
      ...peer,
      'http.request.method': request.method,
      'server.address': base.hostname,
      'server.port': serverPort,
    };
    try {
      const answer = await pool.request({
        method: request.method,
        path,
        headers,
        body: payload ?? null,
        signal,
      });
      const text = await answer.body.text();
      const response: HttpResponse = {
        status: answer.statusCode,
        headers: definedHeaders(answer.headers),
        body: undefined,
        text,
      };
      attributes['http.response.status_code'] = response.status;
      if (response.status >= 400) attributes['error.type'] = String(response.status);
      if (response.status >= 500) {
        throw new FailedAttempt('status', undefined, response);
      }
      return response;
    } catch (error) {
      if (error instanceof FailedAttempt) throw error;
      if (request.signal?.aborted === true) throw new CallerAbort(request.signal.reason);
      const kind = signal.aborted ? 'timeout' : 'network';
      attributes['error.type'] = kind;
      throw new FailedAttempt(kind, error);
    } finally {
      duration.record((performance.now() - startedAt) / 1000, attributes);
    }
  }

  async function send(request: HttpRequest, span: Span): Promise<HttpResponse> {
    const timeoutMs = request.timeoutMs ?? options.timeoutMs;
    const deadlineAt = performance.now() + timeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal =
      request.signal === undefined ? deadline : AbortSignal.any([request.signal, deadline]);

    const headers = lowerCaseKeys({ ...options.headers, ...request.headers });
    headers['accept'] ??= 'application/json';
    if (request.idempotencyKey !== undefined) {
      headers['idempotency-key'] = request.idempotencyKey;
    }
    const payload = request.body === undefined ? undefined : JSON.stringify(request.body);
    if (payload !== undefined) headers['content-type'] ??= 'application/json';
    propagation.inject(context.active(), headers);

    const isRetryable = IDEMPOTENT_METHODS.has(request.method) || 'idempotency-key' in headers;
    const maxAttempts = isRetryable ? options.retry.maxAttempts : 1;
    const path = pathWithQuery(basePath, request.path, request.query);
    const description = { upstream: options.name, method: request.method, path: request.path };
    const label = `${options.name} ${request.method} ${request.path}`;

    for (let attemptNo = 1; ; attemptNo += 1) {
      let outcome:
        | { response: HttpResponse; failure?: never }
        | { response: HttpResponse | undefined; failure: FailedAttempt };
      try {
        outcome = {
          response: await breaker.execute(() => attempt(request, path, headers, payload, signal)),
        };
      } catch (error) {
        if (error instanceof FailedAttempt) {
          outcome = { response: error.response, failure: error };
        } else if (error instanceof CallerAbort) {
          throw error.reason;
        } else if (error instanceof BrokenCircuitError || error instanceof IsolatedCircuitError) {
          throw new AppError('CIRCUIT_OPEN', undefined, {
            cause: error,
            retryAfterSeconds: Math.ceil(options.breaker.halfOpenAfterMs / 1000),
          });
        } else {
          throw error;
        }
      }
      const { response, failure } = outcome;
      if (failure?.kind === 'timeout') throw deadlineExceeded(failure.cause);

      const status = response?.status;
      const isWorthRetrying =
        failure?.kind === 'network' || (status !== undefined && RETRYABLE_STATUSES.has(status));
      const delayMs =
        parseRetryAfterMs(response?.headers['retry-after']) ??
        backoffDelayMs(attemptNo - 1, options.retry);
      if (
        !isWorthRetrying ||
        attemptNo >= maxAttempts ||
        delayMs >= deadlineAt - performance.now()
      ) {
        if (outcome.failure !== undefined) throw upstreamFailed(outcome.failure, attemptNo);
        return outcome.response;
      }

      logger?.warn(
        { ...description, attempt: attemptNo, status, delayMs: Math.round(delayMs) },
        'retrying upstream request',
      );
      span.addEvent('retry', { 'http.request.resend_count': attemptNo, 'retry.delay_ms': delayMs });
      span.setAttribute('http.request.resend_count', attemptNo);
      try {
        await sleep(delayMs, undefined, { signal });
      } catch (error) {
        if (request.signal?.aborted === true) throw request.signal.reason;
        throw deadlineExceeded(error);
      }
    }

    function deadlineExceeded(cause: unknown): AppError {
      return new AppError('UPSTREAM_TIMEOUT', undefined, {
        cause: new Error(`${label}: no answer within ${timeoutMs} ms`, { cause }),
      });
    }

    function upstreamFailed(failure: FailedAttempt, attempts: number): AppError {
      const after = `after ${attempts} attempt(s)`;
      const cause =
        failure.response === undefined
          ? new Error(`${label}: network error ${after}`, { cause: failure.cause })
          : new UpstreamStatusError(
              `${label}: answered ${failure.response.status} ${after}`,
              withBodyIfParsable(failure.response),
            );
      return new AppError('UPSTREAM_FAILED', undefined, { cause });
    }
  }

  return {
    name: options.name,
    get breakerState() {
      return BREAKER_STATES[breaker.state];
    },
    request(request) {
      if (isClosed) {
        return Promise.reject(new Error(`HTTP client ${options.name} is closed`));
      }
      const tracer = trace.getTracer(INSTRUMENTATION_SCOPE);
      const url = new URL(`${basePath}${normalizedPath(request.path)}`, base.origin);
      return tracer.startActiveSpan(
        request.method,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            ...peer,
            'http.request.method': request.method,
            'server.address': base.hostname,
            'server.port': serverPort,
            // Without the query string, which may carry personal data.
            'url.full': url.href,
          },
        },
        async (span) => {
          try {
            const response = await send(request, span);
            span.setAttribute('http.response.status_code', response.status);
            if (response.status >= 400) {
              span.setStatus({ code: SpanStatusCode.ERROR });
              span.setAttribute('error.type', String(response.status));
            }
            return withParsedBody(response, options.name);
          } catch (error) {
            markSpanFailed(span, error);
            throw error;
          } finally {
            span.end();
          }
        },
      );
    },
    async close() {
      if (isClosed) return;
      isClosed = true;
      breakerGauge.removeCallback(observeBreaker);
      for (const listener of breakerListeners) listener.dispose();
      await pool.close();
    },
  };
}

function validateOptions(options: HttpClientOptions): void {
  const { retry, breaker } = options;
  const problems = [
    options.timeoutMs > 0 ? undefined : 'timeoutMs must be positive',
    Number.isInteger(retry.maxAttempts) && retry.maxAttempts >= 1
      ? undefined
      : 'retry.maxAttempts must be an integer ≥ 1',
    retry.baseDelayMs >= 0 && retry.maxDelayMs >= 0 ? undefined : 'retry delays must be ≥ 0',
    Number.isInteger(breaker.consecutiveFailures) && breaker.consecutiveFailures >= 1
      ? undefined
      : 'breaker.consecutiveFailures must be an integer ≥ 1',
    breaker.halfOpenAfterMs >= 0 ? undefined : 'breaker.halfOpenAfterMs must be ≥ 0',
  ].filter((problem) => problem !== undefined);
  if (problems.length > 0) {
    throw new RangeError(`HTTP client ${options.name}: ${problems.join('; ')}`);
  }
}

function normalizedPath(path: string): string {
  return path.startsWith('/') ? path : `/${path}`;
}

function pathWithQuery(basePath: string, path: string, query: QueryParameters | undefined): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined) search.append(key, String(value));
  }
  const queryString = search.toString();
  return `${basePath}${normalizedPath(path)}${queryString === '' ? '' : `?${queryString}`}`;
}

function lowerCaseKeys(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
}

function definedHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const defined: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) defined[name] = value;
  }
  return defined;
}

function isJson(contentType: string | string[] | undefined): boolean {
  const value = Array.isArray(contentType) ? contentType[0] : contentType;
  return value !== undefined && /^application\/([\w.-]+\+)?json\s*(;|$)/i.test(value);
}

/** The response with `body` parsed when it is JSON; throws when a JSON body does not parse. */
function withParsedBody(response: HttpResponse, upstream: string): HttpResponse {
  if (response.text === '' || !isJson(response.headers['content-type'])) return response;
  try {
    return { ...response, body: JSON.parse(response.text) as unknown };
  } catch (error) {
    throw new AppError('UPSTREAM_FAILED', undefined, {
      cause: new Error(`${upstream} answered ${response.status} with invalid JSON`, {
        cause: error,
      }),
    });
  }
}

/** The same for a failed answer, where a broken body must not hide the status. */
function withBodyIfParsable(response: HttpResponse): HttpResponse {
  try {
    return withParsedBody(response, '');
  } catch {
    return response;
  }
}

function markSpanFailed(span: Span, error: unknown): void {
  if (error instanceof Error) {
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    const code: unknown = (error as { code?: unknown }).code;
    span.setAttribute('error.type', typeof code === 'string' ? code : error.name);
  } else {
    span.recordException(String(error));
    span.setStatus({ code: SpanStatusCode.ERROR });
    span.setAttribute('error.type', '_OTHER');
  }
}
