import { ROOT_CONTEXT, context, propagation, trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractContext, injectContext } from './propagation';
import { startTelemetry } from './telemetry';
import type { Telemetry } from './telemetry';

let telemetry: Telemetry;
beforeAll(() => {
  telemetry = startTelemetry({ serviceName: 'propagation-test' });
});
afterAll(() => telemetry.shutdown());

const VALID_TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('injectContext → extractContext', () => {
  it('preserves the trace id and span id of the active span', () => {
    const span = telemetry.tracer.startSpan('outgoing');
    const carrier: Record<string, string> = {};
    context.with(trace.setSpan(context.active(), span), () => injectContext(carrier));
    span.end();

    expect(carrier['traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const extracted = trace.getSpanContext(extractContext(carrier));
    expect(extracted?.traceId).toBe(span.spanContext().traceId);
    expect(extracted?.spanId).toBe(span.spanContext().spanId);
    expect(extracted?.isRemote).toBe(true);
  });

  it('makes spans started in the extracted context children of the remote span', () => {
    const parent = extractContext({ traceparent: VALID_TRACEPARENT });
    const child = telemetry.tracer.startSpan('handle', {}, parent);
    child.end();
    expect(child.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(child.spanContext().spanId).not.toBe('b7ad6b7169203331');
  });

  it('carries tracestate and baggage', () => {
    const remote = extractContext({
      traceparent: VALID_TRACEPARENT,
      tracestate: 'vendor=opaque',
      baggage: 'tenant=acme',
    });
    const carrier: Record<string, string> = {};
    injectContext(carrier, remote);
    expect(carrier['tracestate']).toBe('vendor=opaque');
    expect(propagation.getBaggage(remote)?.getEntry('tenant')?.value).toBe('acme');
    expect(carrier['baggage']).toBe('tenant=acme');
  });

  it('reads header names case-insensitively and takes the first of repeated values', () => {
    const fromMixedCase = extractContext({ TraceParent: VALID_TRACEPARENT });
    expect(trace.getSpanContext(fromMixedCase)?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    const fromList = extractContext({ traceparent: [VALID_TRACEPARENT, 'garbage'] });
    expect(trace.getSpanContext(fromList)?.spanId).toBe('b7ad6b7169203331');
  });

  it('injects nothing when there is no active span', () => {
    const carrier: Record<string, string> = {};
    injectContext(carrier, ROOT_CONTEXT);
    expect(carrier).toEqual({});
  });
});

describe('extractContext with a bad or missing traceparent', () => {
  it.each([
    ['malformed', 'not-a-traceparent'],
    ['all-zero trace id', '00-00000000000000000000000000000000-b7ad6b7169203331-01'],
    ['all-zero span id', '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01'],
    ['version ff', 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
  ])('yields a fresh root for a %s header', (_case, traceparent) => {
    const extracted = extractContext({ traceparent });
    expect(trace.getSpanContext(extracted)).toBeUndefined();
    const span = telemetry.tracer.startSpan('handle', {}, extracted);
    span.end();
    expect(span.spanContext().traceId).not.toBe('0af7651916cd43dd8448eb211c80319c');
    expect(span.spanContext().traceId).toMatch(/^(?!0{32})[0-9a-f]{32}$/);
  });

  it('does not inherit the context active where the request is handled', () => {
    const ambient = telemetry.tracer.startSpan('ambient');
    const extracted = context.with(trace.setSpan(context.active(), ambient), () =>
      extractContext({}),
    );
    ambient.end();
    expect(trace.getSpanContext(extracted)).toBeUndefined();
  });
});
