import {
  context,
  isSpanContextValid,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
  HTTP_REQUEST_METHOD_VALUE_OTHER,
  METRIC_HTTP_SERVER_REQUEST_DURATION,
} from '@opentelemetry/semantic-conventions';
import {
  DURATION_BUCKETS_SECONDS,
  extractContext,
  recordError,
  type Telemetry,
} from '@bazaar/telemetry';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { pathOf } from './problem-replies';

interface RequestSpan {
  readonly span: Span;
  readonly context: Context;
  isEnded: boolean;
  hasErrorType: boolean;
}

/** Read access to the server span of each request. */
export interface RequestTelemetry {
  /** The context holding the request's server span, to run work (or a log call) inside it. */
  contextOf(request: FastifyRequest): Context | undefined;
  /** The server span of the request, when it is observed. */
  spanOf(request: FastifyRequest): Span | undefined;
  /** The trace id of the request, for problem replies and logs. */
  traceIdOf(request: FastifyRequest): string | undefined;
  /** Records an unexpected error on the request's span (exception event, `error.type`). */
  recordError(request: FastifyRequest, error: unknown): void;
}

// HTTP semantic conventions: well-known methods as they are, anything else as _OTHER.
const knownMethods = new Set([
  'CONNECT',
  'DELETE',
  'GET',
  'HEAD',
  'OPTIONS',
  'PATCH',
  'POST',
  'PUT',
  'QUERY',
  'TRACE',
]);

/** A new object each call: callers add the rest of their attributes to it. */
function methodAttributes(method: string): Attributes {
  return knownMethods.has(method)
    ? { [ATTR_HTTP_REQUEST_METHOD]: method }
    : {
        [ATTR_HTTP_REQUEST_METHOD]: HTTP_REQUEST_METHOD_VALUE_OTHER,
        [ATTR_HTTP_REQUEST_METHOD_ORIGINAL]: method,
      };
}

/**
 * Gives every request except `unobservedRoutes` a server span that continues an incoming W3C
 * `traceparent`, named `<METHOD> <route template>`, and records `http.server.request.duration`
 * (seconds; `http_server_request_duration_seconds` on `/metrics`) by method, route and status.
 *
 * The span's context is made active with explicit hooks: `onRequest` for the start of the lifecycle
 * and `preValidation` again after the body is read (body chunks arrive in the socket's async
 * context, not the request's), so validation, `preHandler` hooks, the handler and the error handler
 * run inside it and their logs carry its trace id.
 */
export function observeRequests(
  app: FastifyInstance,
  telemetry: Pick<Telemetry, 'tracer' | 'meter'>,
  unobservedRoutes: ReadonlySet<string>,
): RequestTelemetry {
  const spans = new WeakMap<FastifyRequest, RequestSpan>();
  const duration = telemetry.meter.createHistogram(METRIC_HTTP_SERVER_REQUEST_DURATION, {
    unit: 's',
    description: 'Duration of HTTP server requests.',
    advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_SECONDS] },
  });

  app.addHook('onRequest', (request, _reply, done) => {
    const route = request.routeOptions.url;
    if (route !== undefined && unobservedRoutes.has(route)) {
      done();
      return;
    }
    const parent = extractContext(request.headers);
    // Built in place (no spreads): this runs for every request.
    const attributes: Attributes = methodAttributes(request.method);
    attributes[ATTR_URL_PATH] = pathOf(request);
    attributes[ATTR_URL_SCHEME] = request.protocol;
    attributes[ATTR_SERVER_ADDRESS] = request.hostname;
    if (request.port !== null) attributes[ATTR_SERVER_PORT] = request.port;
    attributes[ATTR_CLIENT_ADDRESS] = request.ip;
    attributes[ATTR_NETWORK_PROTOCOL_VERSION] = request.raw.httpVersion;
    if (route !== undefined) attributes[ATTR_HTTP_ROUTE] = route;
    const userAgent = request.headers['user-agent'];
    if (userAgent !== undefined) attributes[ATTR_USER_AGENT_ORIGINAL] = userAgent;
    attributes['http.request.id'] = request.id;
    const span = telemetry.tracer.startSpan(
      route === undefined ? request.method : `${request.method} ${route}`,
      { kind: SpanKind.SERVER, attributes },
      parent,
    );
    const active = trace.setSpan(parent, span);
    spans.set(request, { span, context: active, isEnded: false, hasErrorType: false });
    context.with(active, done);
  });

  app.addHook('preValidation', (request, _reply, done) => {
    const observed = spans.get(request);
    if (observed === undefined) done();
    else context.with(observed.context, done);
  });

  app.addHook('onResponse', (request, reply, done) => {
    const observed = spans.get(request);
    if (observed === undefined || observed.isEnded) {
      done();
      return;
    }
    observed.isEnded = true;
    const status = reply.statusCode;
    const route = request.routeOptions.url;
    const attributes: Attributes = methodAttributes(request.method);
    attributes[ATTR_URL_SCHEME] = request.protocol;
    attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = status;
    if (route !== undefined) attributes[ATTR_HTTP_ROUTE] = route;
    if (status >= 500) attributes[ATTR_ERROR_TYPE] = String(status);
    duration.record(reply.elapsedTime / 1000, attributes, observed.context);
    const { span } = observed;
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    // Server spans are errors for 5xx only; a 4xx is the client's failure (HTTP semconv).
    if (status >= 500) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      if (!observed.hasErrorType) span.setAttribute(ATTR_ERROR_TYPE, String(status));
    }
    span.end();
    done();
  });

  app.addHook('onRequestAbort', (request, done) => {
    const observed = spans.get(request);
    if (observed !== undefined && !observed.isEnded) {
      observed.isEnded = true;
      observed.span.setAttribute(ATTR_ERROR_TYPE, 'request_aborted');
      observed.span.setStatus({ code: SpanStatusCode.ERROR, message: 'client aborted' });
      observed.span.end();
    }
    done();
  });

  return {
    contextOf: (request) => spans.get(request)?.context,
    spanOf: (request) => spans.get(request)?.span,
    traceIdOf: (request) => {
      const spanContext = spans.get(request)?.span.spanContext();
      return spanContext !== undefined && isSpanContextValid(spanContext)
        ? spanContext.traceId
        : undefined;
    },
    recordError: (request, error) => {
      const observed = spans.get(request);
      if (observed === undefined) return;
      recordError(observed.span, error);
      observed.hasErrorType = true;
    },
  };
}
