import { SpanStatusCode, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTelemetry } from './telemetry';
import type { Telemetry } from './telemetry';
import { withSpan } from './with-span';

// startTelemetry registers the context manager that active spans rely on; the spans themselves go to an
// in-memory exporter so the test can read them back.
let telemetry: Telemetry;
const exporter = new InMemorySpanExporter();
const tracer = new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(exporter)],
}).getTracer('with-span-test');

beforeAll(() => {
  telemetry = startTelemetry({ serviceName: 'with-span-test' });
});
afterAll(() => telemetry.shutdown());
beforeEach(() => exporter.reset());

class DeclinedError extends Error {
  readonly code = 'PAYMENT_DECLINED';
}

describe('withSpan', () => {
  it('returns the result and ends the span with its attributes and unset status', async () => {
    const result = await withSpan(tracer, 'work', { 'order.items': 2 }, () => 42);
    expect(result).toBe(42);
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('work');
    expect(span?.attributes).toEqual({ 'order.items': 2 });
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('makes the span active inside fn, so nested spans are its children', async () => {
    await withSpan(tracer, 'outer', {}, async (outer) => {
      expect(trace.getActiveSpan()).toBe(outer);
      await withSpan(tracer, 'inner', {}, () => Promise.resolve());
    });
    const [inner, outer] = exporter.getFinishedSpans();
    expect(inner?.name).toBe('inner');
    expect(inner?.parentSpanContext?.spanId).toBe(outer?.spanContext().spanId);
  });

  it('records a thrown error, sets ERROR status and error.type, ends the span and rethrows', async () => {
    const failure = new DeclinedError('card declined');
    await expect(withSpan(tracer, 'charge', {}, () => Promise.reject(failure))).rejects.toBe(
      failure,
    );
    const [span] = exporter.getFinishedSpans();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'card declined' });
    expect(span?.attributes['error.type']).toBe('PAYMENT_DECLINED');
    expect(span?.events.map((event) => event.name)).toEqual(['exception']);
    expect(span?.events[0]?.attributes?.['exception.message']).toBe('card declined');
  });

  it('uses the error name as error.type when there is no code', async () => {
    await expect(
      withSpan(tracer, 'parse', {}, () => {
        throw new TypeError('bad input');
      }),
    ).rejects.toThrow('bad input');
    expect(exporter.getFinishedSpans()[0]?.attributes['error.type']).toBe('TypeError');
  });
});
