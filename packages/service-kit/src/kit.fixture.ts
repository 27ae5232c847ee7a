import { createLogger } from '@bazaar/logging';
import { startTelemetry } from '@bazaar/telemetry';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import type { AppDeps } from './app';

/** A JSON log line as the tests read it. */
export type LogLine = Record<string, unknown> & { level: string; msg?: string };

/**
 * Real collaborators for the kit's unit tests: a logger writing into memory, the real telemetry
 * setup (metrics, propagation, context manager) and a tracer whose finished spans are kept.
 */
export function createKitFixture(config: Partial<AppDeps['config']> = {}) {
  const chunks: string[] = [];
  const logger = createLogger({
    service: 'kit-test',
    level: 'debug',
    instanceId: 'kit-test-1',
    destination: { write: (chunk: string) => void chunks.push(chunk) },
  });
  const telemetry = startTelemetry({ serviceName: 'kit-test' });
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  }).getTracer('kit-test');
  const deps = {
    config: { REQUEST_TIMEOUT_MS: 10_000, BODY_LIMIT_BYTES: 1024 * 1024, ...config },
    logger,
    telemetry: { tracer, meter: telemetry.meter, renderMetrics: () => telemetry.renderMetrics() },
  } satisfies AppDeps;
  return {
    deps,
    telemetry,
    logLines: (): LogLine[] =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as LogLine),
    finishedSpans: (): ReadableSpan[] => exporter.getFinishedSpans(),
  };
}
