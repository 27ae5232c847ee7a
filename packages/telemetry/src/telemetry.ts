import { randomUUID } from 'node:crypto';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import type { Meter, Tracer, TracerProvider } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import {
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
} from '@opentelemetry/semantic-conventions';
import { attachInstrumentations } from './instrumentations';
import { PROMETHEUS_CONTENT_TYPE, PullMetricReader, renderPrometheus } from './prometheus';
import { createPropagator } from './propagation';
import { registerRuntimeMetrics } from './runtime-metrics';

/** How `startTelemetry` identifies the service and where it sends traces. */
export interface TelemetryOptions {
  /** `service.name`: the service's folder name (`orders`, `psp-sandbox`). */
  serviceName: string;
  /** `service.version`. */
  serviceVersion?: string;
  /** `service.instance.id`, unique per process; a random UUID when absent. */
  serviceInstanceId?: string;
  /**
   * Base URL of an OTLP/HTTP receiver, e.g. `http://127.0.0.1:4318`; traces go to `${otlpEndpoint}/v1/traces`
   * as protobuf. When absent nothing is exported, but spans are still created and propagated.
   */
  otlpEndpoint?: string;
  /** The longest `shutdown()` waits for the last spans to be exported. Default 3000 ms. */
  shutdownTimeoutMs?: number;
}

/** A running telemetry setup: one tracer provider and one meter provider for the process. */
export interface Telemetry {
  /** The service's tracer, named after the service. */
  readonly tracer: Tracer;
  /** The service's meter, named after the service. Everything recorded here appears on `/metrics`. */
  readonly meter: Meter;
  /**
   * Collects all metrics of this setup (the service's, the shared packages' through the global meter, and
   * the Node runtime's) and renders them in the Prometheus text exposition format, ready to be served as
   * the body of `GET /metrics` with the returned content type.
   */
  renderMetrics(): Promise<{ contentType: string; body: string }>;
  /**
   * Exports the spans still queued and stops both providers. Resolves after at most the shutdown deadline
   * even when the trace receiver is unreachable; never rejects. Idempotent.
   */
  shutdown(): Promise<void>;
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 3000;
// An unreachable collector must cost a bounded, small amount of memory and time: the queue is capped (the
// processor drops spans when it is full) and each export gives up quickly.
const EXPORT_TIMEOUT_MS = 2000;
const MAX_QUEUE_SIZE = 2048;
const MAX_EXPORT_BATCH_SIZE = 512;
const SCHEDULED_DELAY_MS = 1000;

/**
 * Starts tracing and metrics for a service and registers them as the process-wide OpenTelemetry globals,
 * so shared packages (`trace.getTracer`, `metrics.getMeter`) report into the same providers.
 *
 * Safe to call more than once (tests): every call builds independent providers. The W3C propagator and the
 * AsyncLocalStorage context manager are registered once and kept; the global tracer and meter providers
 * belong to the most recent call and are released by its `shutdown()`. Shared packages should call
 * `trace.getTracer` per operation rather than caching tracers across a restart. Call it before creating
 * clients that record metrics through the global meter.
 *
 * @example
 * ```ts
 * const telemetry = startTelemetry({ serviceName: 'orders', otlpEndpoint: config.otlpEndpoint });
 * app.get('/metrics', async (_req, reply) => {
 *   const { contentType, body } = await telemetry.renderMetrics();
 *   return reply.type(contentType).send(body);
 * });
 * ```
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const resource = defaultResource().merge(
    resourceFromAttributes({
      [ATTR_SERVICE_NAME]: options.serviceName,
      [ATTR_SERVICE_INSTANCE_ID]: options.serviceInstanceId ?? randomUUID(),
      ...(options.serviceVersion === undefined
        ? {}
        : { [ATTR_SERVICE_VERSION]: options.serviceVersion }),
    }),
  );

  const spanProcessors: SpanProcessor[] = [];
  if (options.otlpEndpoint !== undefined) {
    const exporter = new OTLPTraceExporter({
      url: `${options.otlpEndpoint.replace(/\/+$/, '')}/v1/traces`,
      timeoutMillis: EXPORT_TIMEOUT_MS,
    });
    spanProcessors.push(
      new BatchSpanProcessor(exporter, {
        maxQueueSize: MAX_QUEUE_SIZE,
        maxExportBatchSize: MAX_EXPORT_BATCH_SIZE,
        scheduledDelayMillis: SCHEDULED_DELAY_MS,
        exportTimeoutMillis: EXPORT_TIMEOUT_MS,
      }),
    );
  }
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors });

  const reader = new PullMetricReader();
  const meterProvider = new MeterProvider({
    resource,
    readers: [reader],
    // `db.client.connection.count` (pg instrumentation) would render as `db_client_connection_count`,
    // which Prometheus reads as the count series of a histogram (promtool rejects it); its previous
    // semantic-conventions name says the same without the clash.
    views: [{ instrumentName: 'db.client.connection.count', name: 'db.client.connections.usage' }],
  });
  const stopRuntimeMetrics = registerRuntimeMetrics(meterProvider.getMeter('@bazaar/telemetry'));

  registerGlobals(tracerProvider, meterProvider);
  attachInstrumentations(tracerProvider, meterProvider);

  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  let stopped: Promise<void> | undefined;

  return {
    tracer: tracerProvider.getTracer(options.serviceName, options.serviceVersion),
    meter: meterProvider.getMeter(options.serviceName, options.serviceVersion),
    async renderMetrics() {
      return { contentType: PROMETHEUS_CONTENT_TYPE, body: await renderPrometheus(reader) };
    },
    shutdown() {
      stopped ??= (async () => {
        stopRuntimeMetrics();
        releaseGlobals(tracerProvider, meterProvider);
        // The SDK reports export failures through `diag`; shutdown itself must not fail a drain.
        const flushed = Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()]);
        await settleWithin(flushed, shutdownTimeoutMs);
      })();
      return stopped;
    },
  };
}

function registerGlobals(tracerProvider: TracerProvider, meterProvider: MeterProvider): void {
  // Both are stateless and identical for every call, so the first registration is kept; the API refuses
  // a second one and returns false.
  const contextManager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(contextManager)) contextManager.disable();
  propagation.setGlobalPropagator(createPropagator());

  trace.disable();
  trace.setGlobalTracerProvider(tracerProvider);
  metrics.disable();
  metrics.setGlobalMeterProvider(meterProvider);
}

function releaseGlobals(tracerProvider: TracerProvider, meterProvider: MeterProvider): void {
  const globalTracerProvider: TracerProvider & { getDelegate?: () => TracerProvider } =
    trace.getTracerProvider();
  if (globalTracerProvider.getDelegate?.() === tracerProvider) trace.disable();
  if (metrics.getMeterProvider() === meterProvider) metrics.disable();
}

async function settleWithin(work: Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
    timer.unref();
  });
  try {
    await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
