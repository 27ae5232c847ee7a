import { SpanStatusCode } from '@opentelemetry/api';
import type { Attributes, Span, Tracer } from '@opentelemetry/api';

/**
 * Runs `fn` inside a new active span and ends the span when `fn` settles. A thrown error is recorded on
 * the span as an exception, sets the span status to ERROR and `error.type` (the error's `code` when it
 * has a string one, else its name), and is rethrown unchanged.
 *
 * @example
 * ```ts
 * const order = await withSpan(telemetry.tracer, 'order.place', { 'order.items': items.length }, () =>
 *   orders.place(command),
 * );
 * ```
 */
export function withSpan<T>(
  tracer: Tracer,
  name: string,
  attributes: Attributes,
  fn: (span: Span) => T | Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      recordError(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Marks a span as failed by `error`: exception event, ERROR status and `error.type`. */
export function recordError(span: Span, error: unknown): void {
  if (error instanceof Error) {
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    const code: unknown = (error as { code?: unknown }).code;
    span.setAttribute('error.type', typeof code === 'string' ? code : error.name);
  } else {
    span.recordException(String(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
    // Semantic conventions' value for errors that have no type of their own.
    span.setAttribute('error.type', '_OTHER');
  }
}
