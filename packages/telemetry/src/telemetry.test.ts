import { context, metrics, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { startTelemetry } from './telemetry';

function isGloballyTracing(): boolean {
  const span = trace.getTracer('probe').startSpan('probe');
  const isRecording = span.isRecording();
  span.end();
  return isRecording;
}

describe('startTelemetry globals', () => {
  it('registers the providers globally and releases them on shutdown', async () => {
    const telemetry = startTelemetry({ serviceName: 'globals-test' });
    expect(isGloballyTracing()).toBe(true);
    metrics.getMeter('@bazaar/probe').createCounter('probe.calls').add(1);
    expect((await telemetry.renderMetrics()).body).toContain('probe_calls_total');

    await telemetry.shutdown();
    expect(isGloballyTracing()).toBe(false);
  });

  it('can start again after a shutdown, and the newest setup owns the globals', async () => {
    const first = startTelemetry({ serviceName: 'first' });
    const second = startTelemetry({ serviceName: 'second' });
    metrics.getMeter('@bazaar/probe').createCounter('owned.by.second').add(1);
    expect((await second.renderMetrics()).body).toContain('owned_by_second_total');
    expect((await first.renderMetrics()).body).not.toContain('owned_by_second');

    // Shutting down the older setup leaves the newer one in place.
    await first.shutdown();
    expect(isGloballyTracing()).toBe(true);
    await second.shutdown();
    expect(isGloballyTracing()).toBe(false);
  });

  it('keeps the active span across await through AsyncLocalStorage', async () => {
    const telemetry = startTelemetry({ serviceName: 'context-test' });
    const span = telemetry.tracer.startSpan('parent');
    await context.with(trace.setSpan(context.active(), span), async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      expect(trace.getActiveSpan()).toBe(span);
    });
    span.end();
    await telemetry.shutdown();
  });

  it('shuts down once, however often it is asked', async () => {
    const telemetry = startTelemetry({ serviceName: 'idempotent-test' });
    const first = telemetry.shutdown();
    expect(telemetry.shutdown()).toBe(first);
    await first;
  });
});
