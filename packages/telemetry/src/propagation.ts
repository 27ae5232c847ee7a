import { ROOT_CONTEXT, context as contextApi, propagation } from '@opentelemetry/api';
import type { Context, TextMapGetter } from '@opentelemetry/api';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';

/** Incoming headers as Node and undici present them: names may repeat, values may be missing. */
export type IncomingHeaders = Record<string, string | string[] | undefined>;

/** The propagator `startTelemetry` registers: W3C Trace Context, then W3C Baggage. */
export function createPropagator(): CompositePropagator {
  return new CompositePropagator({
    propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
  });
}

// Header names are case-insensitive (RFC 9110 §5.1); Node lower-cases them, other carriers may not.
const headerGetter: TextMapGetter<IncomingHeaders> = {
  keys: (carrier) => Object.keys(carrier).map((key) => key.toLowerCase()),
  get: (carrier, key) => {
    const wanted = key.toLowerCase();
    if (wanted in carrier) return carrier[wanted];
    for (const [name, value] of Object.entries(carrier)) {
      if (name.toLowerCase() === wanted) return value;
    }
    return undefined;
  },
};

/**
 * Reads W3C `traceparent`, `tracestate` and `baggage` from incoming headers into a context.
 * Invalid or missing headers leave `base` unchanged, so spans started in the result become new roots.
 *
 * @param headers - the incoming request's or message's headers
 * @param base - the context to extend; defaults to the root context, because a request arriving from
 *   outside must never inherit whatever context happens to be active where it is handled
 */
export function extractContext(headers: IncomingHeaders, base: Context = ROOT_CONTEXT): Context {
  return propagation.extract(base, headers, headerGetter);
}

/**
 * Writes the W3C `traceparent`, `tracestate` and `baggage` of a context into an outgoing carrier
 * (HTTP headers, message headers).
 *
 * @param carrier - the headers object to write into
 * @param context - the context to propagate; defaults to the active one
 */
export function injectContext(
  carrier: Record<string, string>,
  context: Context = contextApi.active(),
): void {
  propagation.inject(context, carrier);
}
