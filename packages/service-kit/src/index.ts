export {
  createApp,
  isShuttingDown,
  markShuttingDown,
  requestIdOf,
  REQUEST_ID_HEADER,
  type AppDeps,
} from './app';
export { operationalRoutes } from './operational-routes';
export { pathOf, sendProblem, toAppError } from './problem-replies';
export {
  DEFAULT_CHECK_TIMEOUT_MS,
  runReadinessChecks,
  type CheckOutcome,
  type CheckResult,
  type ReadinessCheck,
} from './readiness';
export type { RequestTelemetry } from './request-telemetry';
export {
  DEFAULT_CLOSER_TIMEOUT_MS,
  runService,
  type Closer,
  type RunningService,
  type RunServiceOptions,
} from './run-service';
export { bootstrapService, type ServiceBasics } from './bootstrap';
