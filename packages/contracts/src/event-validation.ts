import type { ValidatorError } from './generated/validators';
import type { BazaarEvent } from './generated/event-types';
import { eventValidators, validateCloudEvent } from './generated/validators';
import { isEventType } from './event-type';

/** One reason an event is invalid. */
export interface EventValidationIssue {
  /** A JSON Pointer to the offending member, e.g. `/data/total/amount`; `''` for the event itself. */
  readonly path: string;
  /** What is wrong, for a human (a log line or a dead-letter reason). */
  readonly message: string;
}

/** The outcome of {@link validateEvent}. */
export type EventValidationResult =
  | { readonly ok: true; readonly event: BazaarEvent }
  | {
      readonly ok: false;
      /** The event's `type` when it is a string, known or not. */
      readonly type: string | undefined;
      readonly errors: readonly EventValidationIssue[];
    };

/**
 * Validates a parsed message against the contract of its `type`: the CloudEvents envelope and the
 * `data` of that event type, with every problem listed. An unknown or missing `type` is invalid;
 * the envelope is still checked so the reasons are complete. Validators are precompiled: this
 * never compiles a schema.
 *
 * @example
 * ```ts
 * const result = validateEvent(JSON.parse(body));
 * if (!result.ok) return deadLetter(message, result.errors);
 * if (result.event.type === 'order.placed.v1') authorize(result.event.data);
 * ```
 */
export function validateEvent(event: unknown): EventValidationResult {
  const type = typeOf(event);
  if (isEventType(type)) {
    const validate = eventValidators[type];
    if (validate(event)) return { ok: true, event: event as BazaarEvent };
    return { ok: false, type, errors: toIssues(validate.errors) };
  }
  const errors = validateCloudEvent(event) ? [] : toIssues(validateCloudEvent.errors);
  if (type !== undefined) {
    const shown = type.length > 100 ? `${type.slice(0, 100)}…` : type;
    errors.push({ path: '/type', message: `${JSON.stringify(shown)} is not a known event type` });
  }
  return { ok: false, type, errors };
}

function typeOf(event: unknown): string | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const { type } = event as { type?: unknown };
  return typeof type === 'string' ? type : undefined;
}

// RFC 6901: `~` and `/` are escaped inside a JSON Pointer segment.
function pointerSegment(name: string): string {
  return `/${name.replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

function toIssues(errors: readonly ValidatorError[] | null | undefined): EventValidationIssue[] {
  const issues = new Map<string, EventValidationIssue>();
  for (const error of errors ?? []) {
    const params = error.params as {
      missingProperty?: string;
      additionalProperty?: string;
      allowedValue?: unknown;
      allowedValues?: unknown[];
    };
    let path = error.instancePath;
    let message = error.message ?? `fails ${error.keyword}`;
    if (params.missingProperty !== undefined) {
      path += pointerSegment(params.missingProperty);
      message = 'is required';
    } else if (params.additionalProperty !== undefined) {
      path += pointerSegment(params.additionalProperty);
      message = 'is not allowed';
    } else if (error.keyword === 'const') {
      message = `must be ${JSON.stringify(params.allowedValue)}`;
    } else if (error.keyword === 'enum') {
      message = `must be one of ${(params.allowedValues ?? []).map((value) => JSON.stringify(value)).join(', ')}`;
    }
    // allErrors can report one problem twice (an envelope member checked by two subschemas).
    issues.set(`${path}\u0000${message}`, { path, message });
  }
  return [...issues.values()];
}
