import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ServiceConfig } from '@bazaar/config';
import { AppError, statusOf } from '@bazaar/errors';
import type { Logger } from '@bazaar/logging';
import type { Telemetry } from '@bazaar/telemetry';
import { context } from '@opentelemetry/api';
import { fastify, LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { registerOperationalRoutes, operationalRoutes } from './operational-routes';
import { sendProblem, toAppError, pathOf } from './problem-replies';
import { assertUniqueCheckNames, type ReadinessCheck } from './readiness';
import { lazyChildLoggerFactory } from './lazy-child-logger';
import { observeRequests } from './request-telemetry';

/** What {@link createApp} needs; the service's composition root passes it in. */
export interface AppDeps {
  /** Limits from the service's configuration (`serviceEnv`). */
  readonly config: Readonly<Pick<ServiceConfig, 'REQUEST_TIMEOUT_MS' | 'BODY_LIMIT_BYTES'>>;
  readonly logger: Logger;
  readonly telemetry: Pick<Telemetry, 'tracer' | 'meter' | 'renderMetrics'>;
  /** What `/readyz` verifies, run concurrently, each with its own deadline. */
  readonly readinessChecks?: readonly ReadinessCheck[];
  /**
   * Whether a handler still running after `REQUEST_TIMEOUT_MS` is answered with a timeout error
   * (fastify's `handlerTimeout`; a timer and an AbortController per request). Default true; false
   * only when every route enforces a deadline of its own (the gateway's per-route deadlines).
   */
  readonly handlerTimeout?: boolean;
}

/** The header carrying the request id, in and out. */
export const REQUEST_ID_HEADER = 'x-request-id';

// Long enough for a UUID, a ULID or a W3C trace id with a prefix; only characters safe in logs and
// headers, so a caller cannot inject a fake log field or a header through it.
const wellFormedRequestId = /^[A-Za-z0-9._:-]{1,128}$/;

/** The incoming `x-request-id` when it is well-formed, else a new UUID. */
export function requestIdOf(raw: IncomingMessage): string {
  const incoming = raw.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && wellFormedRequestId.test(incoming)
    ? incoming
    : randomUUID();
}

interface AppState {
  isShuttingDown: boolean;
}

const appStates = new WeakMap<FastifyInstance, AppState>();

/**
 * Marks `app` as shutting down: `/readyz` answers 503 SHUTTING_DOWN, and every response from now
 * on carries `Connection: close`, so keep-alive clients move to another instance. `app.close()`
 * does the same; `runService` calls this first.
 */
export function markShuttingDown(app: FastifyInstance): void {
  const state = appStates.get(app);
  if (state !== undefined) state.isShuttingDown = true;
}

/** Whether {@link markShuttingDown} (or `app.close()`) was called on an app from {@link createApp}. */
export function isShuttingDown(app: FastifyInstance): boolean {
  return appStates.get(app)?.isShuttingDown ?? false;
}

// The socket may be idle while a handler works, so its inactivity timeout must outlast the handler
// deadline; 5 s more leaves room to write the 503 the deadline produces.
const SOCKET_TIMEOUT_MARGIN_MS = 5000;
// Longer than the idle timeout of the proxies in front (nginx keeps upstream connections 60 s), so
// the service never closes a connection a proxy is about to reuse.
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

/**
 * A fastify app with Bazaar's HTTP conventions, ready for the service to add its routes:
 *
 * - request id from a well-formed `x-request-id` or a new UUID, echoed in the response and logged as
 *   `request_id`;
 * - `BODY_LIMIT_BYTES` body limit; `REQUEST_TIMEOUT_MS` both to receive a request and to answer it
 *   (after which the reply is 503 and `request.signal` aborts);
 * - every error as RFC 9457 problem+json: schema validation → VALIDATION_FAILED with the fields,
 *   unknown route → ROUTE_NOT_FOUND, known path with another method → METHOD_NOT_ALLOWED,
 *   `AppError` → its status, anything else → INTERNAL, logged once with the trace id;
 * - a server span per request continuing an incoming `traceparent`, and the
 *   `http.server.request.duration` histogram;
 * - `GET /livez`, `GET /readyz` (the readiness checks), `GET /metrics` (Prometheus text).
 *
 * Nothing listens until `runService` (or `app.listen`) is called; `app.inject` works at once.
 *
 * @example
 * ```ts
 * const app = createApp({ config, logger, telemetry, readinessChecks: [postgresCheck(pool)] });
 * app.register(orderRoutes(orderService));
 * ```
 */
export function createApp(deps: AppDeps): FastifyInstance {
  const { config, logger, telemetry, readinessChecks = [], handlerTimeout = true } = deps;
  assertUniqueCheckNames(readinessChecks);
  // Typed as fastify's base logger so the app is a plain `FastifyInstance` for route modules.
  const baseLogger: FastifyBaseLogger = logger;
  const app = fastify({
    loggerInstance: baseLogger,
    // One access-log line per request is written in onResponse below, instead of fastify's two.
    logController: new LogController({
      disableRequestLogging: true,
      requestIdLogLabel: 'request_id',
    }),
    genReqId: requestIdOf,
    childLoggerFactory: lazyChildLoggerFactory,
    bodyLimit: config.BODY_LIMIT_BYTES,
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    ...(handlerTimeout ? { handlerTimeout: config.REQUEST_TIMEOUT_MS } : {}),
    connectionTimeout: config.REQUEST_TIMEOUT_MS + SOCKET_TIMEOUT_MARGIN_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // Requests that arrive on an open connection while draining are still served (with
    // `Connection: close`); /readyz reports the drain as a problem+json 503 instead.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    ajv: {
      // Report every invalid field, not the first; and let `additionalProperties: false` reject
      // unknown fields (a client's typo) instead of silently dropping them.
      customOptions: { allErrors: true, removeAdditional: false },
    },
  });
  const state: AppState = { isShuttingDown: false };
  appStates.set(app, state);

  app.addHook('preClose', (done) => {
    state.isShuttingDown = true;
    done();
  });
  app.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (state.isShuttingDown) reply.header('connection', 'close');
    done(null, payload);
  });

  const requests = observeRequests(app, telemetry, operationalRoutes);

  app.setErrorHandler((error, request, reply) => {
    const expected = toAppError(error);
    const traceId = requests.traceIdOf(request);
    context.with(requests.contextOf(request) ?? context.active(), () => {
      if (expected === undefined) {
        requests.recordError(request, error);
        request.log.error({ err: error }, 'unhandled error');
      } else if (expected.status >= 500) {
        request.log.warn({ err: expected }, expected.message);
      }
    });
    return sendProblem(reply, expected ?? error, traceId);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = pathOf(request);
    const allowed = routableMethods.filter(
      (method) => method !== request.method && app.findRoute({ method, url: path }) !== null,
    );
    const error =
      allowed.length === 0
        ? new AppError('ROUTE_NOT_FOUND', `No route for ${request.method} ${path}.`)
        : new AppError('METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${path}.`);
    if (allowed.length > 0) reply.header('allow', allowed.join(', '));
    return sendProblem(reply, error, requests.traceIdOf(request));
  });

  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url;
    // Probes and scrapes arrive every few seconds; they would drown the access log.
    const level = route !== undefined && operationalRoutes.has(route) ? 'debug' : 'info';
    if (!logger.isLevelEnabled(level)) {
      done();
      return;
    }
    const fields = {
      request_id: request.id,
      method: request.method,
      path: pathOf(request),
      route,
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 10) / 10,
    };
    // Inside the (ended) span's context, so the access-log line carries the trace id too. The
    // base logger with the request id as a field: the request's own child logger is never built
    // for a request that logs nothing else (lazyChildLoggerFactory).
    context.with(requests.contextOf(request) ?? context.active(), () => {
      logger[level](fields, 'request');
    });
    done();
  });

  // A client that goes away before the answer gets no onResponse; its line says so with nginx's
  // 499, so abandoned requests stay visible in the access log without looking like server errors.
  app.addHook('onRequestAbort', (request, done) => {
    const fields = {
      request_id: request.id,
      method: request.method,
      path: pathOf(request),
      route: request.routeOptions.url,
      status: statusOf('CLIENT_CLOSED_REQUEST'),
    };
    context.with(requests.contextOf(request) ?? context.active(), () => {
      logger.info(fields, 'request aborted by the client');
    });
    done();
  });

  registerOperationalRoutes(app, {
    telemetry,
    readinessChecks,
    isShuttingDown: () => state.isShuttingDown,
  });
  return app;
}

const routableMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
