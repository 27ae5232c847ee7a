import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { AppError } from '@bazaar/errors';
import { injectContext } from '@bazaar/telemetry';
import {
  context,
  SpanKind,
  SpanStatusCode,
  trace,
  type Histogram,
  type Tracer,
} from '@opentelemetry/api';
import type { Agent } from 'undici';
import { type Dispatcher } from 'undici';
import type { HttpMethod } from './declarative';
import type { Target, Upstream } from './upstream';

/** Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), plus what we set ourselves. */
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'traceparent',
  'tracestate',
]);

/**
 * Identity headers the gateway sets after verifying a token. Anything a client sends under these
 * names is dropped, so a service can trust them — alongside the token, which it verifies again.
 */
export const IDENTITY_HEADERS = [
  'x-consumer-id',
  'x-consumer-username',
  'x-authenticated-userid',
] as const;

/** Never forwarded upstream: hop-by-hop headers and clients' copies of the identity headers. */
const alwaysDropped: ReadonlySet<string> = new Set<string>([...hopByHop, ...IDENTITY_HEADERS]);

const idempotentMethods = new Set<string>(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
// Errors raised before a request could reach the upstream: safe to retry for any method.
const notSentCodes = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);
const failedStatuses = new Set([502, 503, 504]);

export interface ProxyRequest {
  readonly routeName: string;
  readonly serviceName: string;
  readonly method: HttpMethod;
  /** Upstream path with the query string. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer | undefined;
  readonly clientIp: string;
  readonly protocol: string;
  readonly requestId: string;
  readonly identityHeaders: Readonly<Record<string, string>>;
  /** Deadline of the whole exchange, retries included. */
  readonly timeoutMs: number;
  readonly retries: number;
  /**
   * Calls `onGone` once if the client goes away before the exchange (body included) is over;
   * returns what stops watching. Plain listeners: an AbortSignal per request costs more.
   */
  readonly watchClient: (onGone: () => void) => () => void;
}

export interface ProxyResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[]>;
  /** Read whole when the upstream announced a small length; streamed otherwise. */
  readonly body: Buffer | Dispatcher.ResponseData['body'];
}

/**
 * Bodies up to this announced length are read whole before the reply: one write to the client
 * instead of a stream pipe, the gateway's largest per-request cost for typical small JSON
 * answers. Larger or unannounced (chunked) bodies stream, so memory stays bounded.
 */
export const BUFFERED_BODY_MAX_BYTES = 64 * 1024;

export interface ProxyDeps {
  readonly upstream: Upstream;
  readonly agent: Agent;
  readonly tracer: Tracer;
  readonly attempts: Histogram;
}

function outgoingHeaders(request: ProxyRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  let dropped: ReadonlySet<string> = alwaysDropped;
  const connection = request.headers.connection;
  if (typeof connection === 'string') {
    // Only a Connection header naming other headers needs a set of its own.
    const named = connection.split(',').map((name) => name.trim().toLowerCase());
    if (named.some((name) => !alwaysDropped.has(name))) {
      dropped = new Set<string>([...alwaysDropped, ...named]);
    }
  }
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || dropped.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const forwardedFor = request.headers['x-forwarded-for'];
  headers['x-forwarded-for'] =
    typeof forwardedFor === 'string' ? `${forwardedFor}, ${request.clientIp}` : request.clientIp;
  headers['x-forwarded-proto'] = request.protocol;
  if (typeof request.headers.host === 'string') headers['x-forwarded-host'] = request.headers.host;
  headers['x-request-id'] = request.requestId;
  Object.assign(headers, request.identityHeaders);
  return headers;
}

// The request id is the gateway's; the upstream's copy must not duplicate it.
const droppedFromResponses: ReadonlySet<string> = new Set<string>(
  [...hopByHop, 'x-request-id'].filter((name) => name !== 'content-length'),
);

function responseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || droppedFromResponses.has(name)) continue;
    result[name] = value;
  }
  return result;
}

/**
 * The abort signal of one exchange, for undici (which takes an EventEmitter as well as an
 * AbortSignal: `aborted`, `reason` and an `abort` event). An AbortController per request was the
 * gateway's largest single cost after the sockets: building its AbortSignal (an EventTarget) and
 * undici's listener on it took about 4 µs of CPU per request in the profiles.
 */
export class ExchangeSignal extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }
}

/** Whether the exchange was aborted because its client went away (not by the deadline). */
function isClientGoneError(signal: ExchangeSignal): boolean {
  return signal.aborted && (signal.reason as { name?: unknown } | undefined)?.name === 'AbortError';
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Sends a request to one instance after another until one answers: a refused connection is retried
 * for any method (nothing was sent), a reset connection or a 502/503/504 only for idempotent
 * methods, each time on an instance not tried yet, within one deadline for the whole exchange.
 * Every attempt feeds passive health; the exchange's outcome feeds the circuit breaker.
 */
export async function proxyRequest(deps: ProxyDeps, request: ProxyRequest): Promise<ProxyResponse> {
  const { upstream } = deps;
  const admission = upstream.admit();
  if (!admission.allowed) {
    throw new AppError('CIRCUIT_OPEN', `${request.serviceName} is failing; retry later.`, {
      retryAfterSeconds: admission.retryAfterSeconds,
    });
  }
  // One signal for the deadline and the client (cheaper than AbortSignal.timeout + any per
  // request); the deadline also bounds the response body, so its timer ends with the body.
  const signal = new ExchangeSignal();
  let isTimedOut = false;
  const timer = setTimeout(() => {
    isTimedOut = true;
    signal.abort(new DOMException('The operation timed out.', 'TimeoutError'));
  }, request.timeoutMs);
  timer.unref();
  let isClientGone = false;
  const stopWatching = request.watchClient(() => {
    isClientGone = true;
    signal.abort(new DOMException('The client went away.', 'AbortError'));
  });
  const release = () => {
    clearTimeout(timer);
    stopWatching();
  };
  let isReleasedByBody = false;
  const tried = new Set<string>();
  const isIdempotent = idempotentMethods.has(request.method);
  const headers = outgoingHeaders(request);
  let lastError: unknown;
  let exchangeOk = false;
  try {
    for (let attempt = 0; attempt <= request.retries; attempt++) {
      const target = upstream.pick(tried);
      if (target === undefined) break;
      tried.add(target.id);
      const outcome = await attemptOnce(deps, request, target, headers, signal);
      if (outcome.kind === 'response') {
        const isFailure = failedStatuses.has(outcome.response.statusCode);
        const canRetry = isFailure && isIdempotent && attempt < request.retries;
        const { body } = outcome.response;
        if (!canRetry) {
          exchangeOk = !isFailure;
          if (!Buffer.isBuffer(body) && !body.closed) {
            body.once('close', release);
            isReleasedByBody = true;
          }
          return outcome.response;
        }
        if (!Buffer.isBuffer(body)) await body.dump().catch(() => undefined);
        lastError = new Error(`upstream answered ${outcome.response.statusCode}`);
        continue;
      }
      lastError = outcome.error;
      if (isTimedOut) {
        throw new AppError(
          'UPSTREAM_TIMEOUT',
          `${request.serviceName} did not answer within ${request.timeoutMs} ms.`,
          { cause: outcome.error },
        );
      }
      if (isClientGone) {
        // Expected whenever a client gives up (a load generator stopping, a user closing a tab):
        // a 4xx for logs and metrics, not an unhandled error.
        throw new AppError('CLIENT_CLOSED_REQUEST', 'The client closed the connection.', {
          cause: outcome.error,
        });
      }
      const code = errorCode(outcome.error);
      if (!(code !== undefined && notSentCodes.has(code)) && !isIdempotent) break;
    }
    if (tried.size === 0) {
      throw new AppError(
        'SERVICE_UNAVAILABLE',
        `No instance of ${request.serviceName} is available.`,
      );
    }
    throw new AppError('UPSTREAM_FAILED', `${request.serviceName} could not be reached.`, {
      cause: lastError,
    });
  } finally {
    if (!isReleasedByBody) release();
    // A client that went away says nothing about the service (a load generator closing its
    // connections must not open the breaker for everyone else).
    if (!exchangeOk && isClientGone) upstream.abandonExchange(admission.isTrial);
    else upstream.recordExchange(exchangeOk, admission.isTrial);
  }
}

type Attempt =
  | { readonly kind: 'response'; readonly response: ProxyResponse }
  | { readonly kind: 'error'; readonly error: unknown };

async function attemptOnce(
  deps: ProxyDeps,
  request: ProxyRequest,
  target: Target,
  headers: Record<string, string>,
  signal: ExchangeSignal,
): Promise<Attempt> {
  const started = performance.now();
  const span = deps.tracer.startSpan(
    request.method,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'http.request.method': request.method,
        'server.address': target.address,
        'url.full': `${target.address}${request.path.split('?')[0] ?? ''}`,
        'bazaar.gateway.route': request.routeName,
        'bazaar.gateway.instance': target.id,
      },
    },
    context.active(),
  );
  const attemptHeaders = { ...headers };
  injectContext(attemptHeaders, trace.setSpan(context.active(), span));
  target.outstanding += 1;
  const record = (status: string) =>
    deps.attempts.record((performance.now() - started) / 1000, {
      'bazaar.gateway.route': request.routeName,
      'bazaar.gateway.service': request.serviceName,
      'http.response.status_code': status,
    });
  try {
    const response = await deps.agent.request({
      origin: target.address,
      path: request.path,
      method: request.method,
      headers: attemptHeaders,
      body: request.body ?? null,
      signal,
    });
    const length = Number(response.headers['content-length']);
    const body =
      length <= BUFFERED_BODY_MAX_BYTES
        ? Buffer.from(await response.body.arrayBuffer())
        : response.body;
    const isFailure = failedStatuses.has(response.statusCode);
    deps.upstream.recordAttempt(target, !isFailure);
    span.setAttribute('http.response.status_code', response.statusCode);
    if (response.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    record(String(response.statusCode));
    return {
      kind: 'response',
      response: {
        statusCode: response.statusCode,
        headers: responseHeaders(response.headers),
        body,
      },
    };
  } catch (error) {
    // A client that went away says nothing about the instance.
    if (!isClientGoneError(signal)) deps.upstream.recordAttempt(target, false);
    span.setStatus({ code: SpanStatusCode.ERROR });
    span.setAttribute('error.type', errorCode(error) ?? 'error');
    record(signal.aborted ? 'timeout' : 'error');
    return { kind: 'error', error };
  } finally {
    target.outstanding -= 1;
    span.end();
  }
}
