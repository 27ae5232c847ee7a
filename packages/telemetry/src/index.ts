export { startTelemetry } from './telemetry';
export type { Telemetry, TelemetryOptions } from './telemetry';
export { extractContext, injectContext } from './propagation';
export type { IncomingHeaders } from './propagation';
export { recordError, withSpan } from './with-span';
export { DURATION_BUCKETS_SECONDS, PROMETHEUS_CONTENT_TYPE } from './prometheus';
export {
  createIngestCounter,
  createNotificationCounter,
  createOrderMetrics,
  createPaymentMetrics,
  observeDeadLetterDepth,
  observeOutbox,
} from './domain-metrics';
export type { OrderMetrics, OutboxBacklog, PaymentMetrics } from './domain-metrics';
export { INSTRUMENTED_MODULES } from './instrumentations';
