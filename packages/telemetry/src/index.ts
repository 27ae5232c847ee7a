export { startTelemetry } from './telemetry';
export type { Telemetry, TelemetryOptions } from './telemetry';
export { extractContext, injectContext } from './propagation';
export type { IncomingHeaders } from './propagation';
export { recordError, withSpan } from './with-span';
export { DURATION_BUCKETS_SECONDS, PROMETHEUS_CONTENT_TYPE } from './prometheus';
