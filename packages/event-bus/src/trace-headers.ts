import { injectContext } from '@bazaar/telemetry';
import { envelopeTraceHeaders } from './event';

/**
 * Message headers with W3C trace context: the given headers' own `traceparent` if they have one (stored
 * with an outbox row), else the event envelope's `traceparent` extension, else the active context.
 */
export function traceHeaders(message: {
  readonly event?: unknown;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}): Record<string, string> {
  const headers: Record<string, string> = {};
  if (message.headers?.['traceparent'] === undefined) {
    const fromEnvelope = envelopeTraceHeaders(message.event);
    if (fromEnvelope['traceparent'] === undefined) injectContext(headers);
    else Object.assign(headers, fromEnvelope);
  }
  return Object.assign(headers, message.headers);
}
