import { createRequire } from 'node:module';
import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { MongoDBInstrumentation } from '@opentelemetry/instrumentation-mongodb';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';

// One set per process, shared by every startTelemetry() call (tests start several).
const INSTRUMENTATIONS = Symbol.for('@bazaar/telemetry/instrumentations');
type Registry = typeof globalThis & { [INSTRUMENTATIONS]?: Instrumentation[] };

/**
 * Client libraries whose calls become CLIENT spans: PostgreSQL (`pg`, `pg-pool`), Redis (`ioredis`)
 * and MongoDB (`mongodb`). The broker is not here: `@bazaar/event-bus` makes its own PRODUCER and
 * CONSUMER spans and carries the trace in message headers; the amqplib instrumentation would inject
 * the relay's context over the event's own `traceparent` and split the order's trace in two. HTTP
 * clients are not here either: `@bazaar/http-client` makes its own CLIENT spans.
 */
export const INSTRUMENTED_MODULES = ['pg', 'pg-pool', 'ioredis', 'mongodb'] as const;

/**
 * Patches the database clients for tracing, once per process. Spans are only made under an
 * existing span (`requireParentSpan`): a relay's or poller's background queries do not start
 * traces of their own, and a request's queries appear inside its trace.
 *
 * Services are esbuild bundles that import npm packages as external modules, so those modules are
 * usually loaded before this runs. require-in-the-middle patches a module on its next `require`,
 * and the classes it patches (`pg.Client.prototype.query`, `Redis.prototype.sendCommand`, the
 * MongoDB connection) are shared by every importer, so requiring each module once here patches
 * the copy the service already imported too.
 */
export function enableInstrumentations(): Instrumentation[] {
  const registry = globalThis as Registry;
  const existing = registry[INSTRUMENTATIONS];
  if (existing !== undefined) return existing;
  const instrumentations: Instrumentation[] = [
    new PgInstrumentation({ requireParentSpan: true }),
    new IORedisInstrumentation({ requireParentSpan: true }),
    new MongoDBInstrumentation({ requireParentSpan: true }),
  ];
  registry[INSTRUMENTATIONS] = instrumentations;
  // Resolve from the process's entry point (the service bundle), where its dependencies live.
  const require = createRequire(process.argv[1] ?? import.meta.url);
  for (const name of INSTRUMENTED_MODULES) {
    try {
      require(name);
    } catch {
      // Not a dependency of this process: nothing to patch.
    }
  }
  return instrumentations;
}

/** Points the instrumentations at the newest providers (the ones `startTelemetry` registered). */
export function attachInstrumentations(
  tracerProvider: TracerProvider,
  meterProvider: MeterProvider,
): void {
  for (const instrumentation of enableInstrumentations()) {
    instrumentation.setTracerProvider(tracerProvider);
    instrumentation.setMeterProvider(meterProvider);
  }
}
