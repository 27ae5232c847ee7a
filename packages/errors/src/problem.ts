import { isAppError, type FieldIssue } from './app-error';
import { errorCatalog, problemTypeOf, type ErrorCode } from './catalog';

/** The media type of an RFC 9457 problem reply. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/**
 * An RFC 9457 problem details object, with Bazaar's extension members `code` (always), `traceId`
 * (when a trace is active) and `errors` (field issues of a validation failure).
 * @see https://www.rfc-editor.org/rfc/rfc9457
 */
export interface ProblemDetails {
  /** A stable URI naming the problem type: `https://bazaar.dev/problems/<kebab-code>`. */
  readonly type: string;
  readonly title: string;
  readonly status: number;
  /** A client-safe explanation of this occurrence. */
  readonly detail?: string;
  /** The request this occurrence belongs to, usually its path. */
  readonly instance?: string;
  readonly code: ErrorCode;
  readonly traceId?: string;
  readonly errors?: readonly FieldIssue[];
  readonly [extension: string]: unknown;
}

/** Where a problem occurred. */
export interface ProblemContext {
  /** The `instance` member, usually the request path. */
  readonly instance?: string;
  /** The trace id of the request, so a client report leads to the trace and the logs. */
  readonly traceId?: string;
}

/** The detail of every unexpected error: its real message may hold internals and is only logged. */
export const INTERNAL_ERROR_DETAIL = 'An unexpected error occurred.';

// Members a `details` object must not override: they carry the meaning of the reply.
const reservedMembers = new Set([
  'type',
  'title',
  'status',
  'detail',
  'instance',
  'code',
  'traceId',
]);

/**
 * Renders any thrown value as an RFC 9457 problem. An {@link AppError} keeps its code, status,
 * message (as `detail`) and details (as extension members); anything else becomes INTERNAL with a
 * generic detail, so the message and stack of an unexpected error never reach a client.
 *
 * @example
 * ```ts
 * reply.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(toProblem(error, { instance: request.url, traceId }));
 * ```
 */
export function toProblem(error: unknown, context: ProblemContext = {}): ProblemDetails {
  const code: ErrorCode = isAppError(error) ? error.code : 'INTERNAL';
  const detail = isAppError(error) ? error.message : INTERNAL_ERROR_DETAIL;
  const extensions: Record<string, unknown> = {};
  if (isAppError(error) && error.details !== undefined) {
    for (const [member, value] of Object.entries(error.details)) {
      if (!reservedMembers.has(member) && value !== undefined) extensions[member] = value;
    }
  }
  const { status, title } = errorCatalog[code];
  return {
    type: problemTypeOf(code),
    title,
    status,
    detail,
    ...(context.instance === undefined ? {} : { instance: context.instance }),
    code,
    ...(context.traceId === undefined ? {} : { traceId: context.traceId }),
    ...extensions,
  };
}
