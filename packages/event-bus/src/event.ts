import { validateEvent } from '@bazaar/contracts';
import { AppError } from '@bazaar/errors';

/**
 * A CloudEvents 1.0 envelope in JSON structured mode, as it travels on the bus: the whole object is the
 * message body. `type` (`order.placed.v1`) is also the routing key; `id` is what consumers dedupe on.
 * https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md
 */
export interface BusEvent<Data = unknown> {
  readonly specversion: '1.0';
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly time?: string;
  readonly subject?: string;
  readonly datacontenttype?: string;
  readonly dataschema?: string;
  readonly data: Data;
}

/** One problem a schema validator found, e.g. `{ path: '/data/total/amount', message: 'must be integer' }`. */
export interface EventIssue {
  readonly path: string;
  readonly message: string;
}

/** What an {@link EventValidator} answers. */
export type ValidationResult =
  { readonly ok: true } | { readonly ok: false; readonly errors: readonly EventIssue[] };

/**
 * Checks an event against its schema. The bus calls it before publishing and after receiving.
 * The default everywhere is {@link defaultValidator}: the contracts of `contracts/events`.
 */
export type EventValidator = (event: unknown) => ValidationResult;

/** `@bazaar/contracts`' `validateEvent`: the CloudEvents envelope and the `data` schema of each type. */
export const defaultValidator: EventValidator = validateEvent;

/**
 * The W3C trace context an event carries in its envelope (the CloudEvents distributed tracing
 * extension, `traceparent`/`tracestate`), as headers; empty when it has none.
 */
export function envelopeTraceHeaders(event: unknown): Record<string, string> {
  const headers: Record<string, string> = {};
  if (typeof event !== 'object' || event === null) return headers;
  const { traceparent, tracestate } = event as { traceparent?: unknown; tracestate?: unknown };
  if (typeof traceparent === 'string') {
    headers['traceparent'] = traceparent;
    if (typeof tracestate === 'string') headers['tracestate'] = tracestate;
  }
  return headers;
}

/** A map from event type to the event's TypeScript type, e.g. the contracts package's `EventTypes`. */
export type EventMap = Readonly<Record<string, BusEvent>>;

// Event types become routing keys: words of the topic grammar, no wildcards.
const EVENT_TYPE = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/;

/**
 * The structural minimum the bus itself needs (an object with a string `id` and a routable `type`),
 * checked before any schema: the schema validator may be looser or absent for some types.
 *
 * @returns the issues found; empty when the value can travel on the bus
 */
export function envelopeIssues(event: unknown): EventIssue[] {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    return [{ path: '', message: 'must be a JSON object' }];
  }
  const issues: EventIssue[] = [];
  const { id, type, specversion } = event as Record<string, unknown>;
  if (typeof id !== 'string' || id === '') {
    issues.push({ path: '/id', message: 'must be a non-empty string' });
  }
  if (typeof type !== 'string' || !EVENT_TYPE.test(type)) {
    issues.push({ path: '/type', message: 'must be a dotted lower-case event type' });
  }
  if (specversion !== '1.0') issues.push({ path: '/specversion', message: 'must be "1.0"' });
  return issues;
}

/** All issues of an event: the envelope's first, then the schema's (only when the envelope is sound). */
export function eventIssues(event: unknown, validate: EventValidator): EventIssue[] {
  const structural = envelopeIssues(event);
  if (structural.length > 0) return structural;
  const result = validate(event);
  return result.ok ? [] : [...result.errors];
}

/** One line naming every issue, for logs and the `x-bazaar-error` header. */
export function describeIssues(issues: readonly EventIssue[]): string {
  return issues
    .map((issue) => `${issue.path === '' ? '(event)' : issue.path}: ${issue.message}`)
    .join('; ');
}

/** The error `publish` rejects with when an event fails validation; nothing was sent. */
export function invalidEventError(event: unknown, issues: readonly EventIssue[]): AppError {
  const type =
    typeof event === 'object' && event !== null && 'type' in event ? String(event.type) : 'event';
  return new AppError('VALIDATION_FAILED', `${type} failed validation: ${describeIssues(issues)}`, {
    details: { errors: issues },
  });
}
