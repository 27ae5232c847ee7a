import {
  AppError,
  isAppError,
  PROBLEM_CONTENT_TYPE,
  toProblem,
  type ErrorCode,
} from '@bazaar/errors';
import type { FieldIssue } from '@bazaar/errors';
import type { FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify';

// Fastify's own client errors that have a code of their own in the catalog. Others are mapped by status.
const fastifyCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  // A cooperative deadline on the whole request lifecycle (fastify `handlerTimeout`). Not 408: that
  // status says the client was too slow to send (RFC 9110 §15.5.9) and invites automatic retries.
  FST_ERR_HANDLER_TIMEOUT: 'SERVICE_UNAVAILABLE',
};

const codesByStatus: Readonly<Record<number, ErrorCode>> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'UNPROCESSABLE',
  429: 'RATE_LIMITED',
};

interface FastifyLikeError {
  readonly code?: unknown;
  readonly statusCode?: unknown;
  readonly message?: unknown;
  readonly validation?: readonly FastifySchemaValidationError[];
  readonly validationContext?: string;
}

/** The field issue an Ajv error describes, with a path such as `/body/amount/currency`. */
function toFieldIssue(error: FastifySchemaValidationError, part: string): FieldIssue {
  const base = `/${part}${error.instancePath}`;
  const { params } = error;
  if (error.keyword === 'required' && typeof params.missingProperty === 'string') {
    return { path: `${base}/${params.missingProperty}`, message: 'is required' };
  }
  if (error.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    return { path: `${base}/${params.additionalProperty}`, message: 'is not allowed' };
  }
  return { path: base, message: error.message ?? `fails ${error.keyword}` };
}

/**
 * The {@link AppError} a thrown value stands for, or `undefined` when it is unexpected (a bug or an
 * unhandled dependency failure, to be answered as INTERNAL and logged). Fastify's schema validation
 * errors become VALIDATION_FAILED with every field listed; fastify's other client errors
 * (`FST_ERR_*`, 4xx) keep their status and message.
 */
export function toAppError(error: unknown): AppError | undefined {
  if (isAppError(error)) return error;
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, statusCode, message, validation, validationContext } = error as FastifyLikeError;
  if (validation !== undefined && validation.length > 0) {
    const part = validationContext ?? 'body';
    const errors = validation.map((issue) => toFieldIssue(issue, part));
    const detail = `The request ${part} has ${errors.length} invalid ${errors.length === 1 ? 'field' : 'fields'}.`;
    return new AppError('VALIDATION_FAILED', detail, { cause: error, details: { errors } });
  }
  if (typeof code !== 'string' || !code.startsWith('FST_')) return undefined;
  const mapped =
    fastifyCodes[code] ??
    (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500
      ? (codesByStatus[statusCode] ?? 'BAD_REQUEST')
      : undefined);
  if (mapped === undefined) return undefined;
  return new AppError(mapped, typeof message === 'string' ? message : undefined, { cause: error });
}

/** The request path without its query string, which may carry secrets: the problem `instance`. */
export function pathOf(request: FastifyRequest): string {
  const index = request.url.indexOf('?');
  return index === -1 ? request.url : request.url.slice(0, index);
}

/** Answers with the RFC 9457 problem for `error` (an AppError, or anything else as INTERNAL). */
export function sendProblem(
  reply: FastifyReply,
  error: unknown,
  traceId: string | undefined,
): FastifyReply {
  const problem = toProblem(error, {
    instance: pathOf(reply.request),
    ...(traceId === undefined ? {} : { traceId }),
  });
  if (isAppError(error) && error.retryAfterSeconds !== undefined) {
    reply.header('retry-after', String(error.retryAfterSeconds));
  }
  return reply.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem);
}
