export { createHttpClient, UpstreamStatusError } from './http-client';
export type {
  BreakerOptions,
  BreakerState,
  HttpClient,
  HttpClientLogger,
  HttpClientOptions,
  HttpMethod,
  HttpRequest,
  HttpResponse,
  QueryParameters,
  RetryOptions,
} from './http-client';
export { backoffDelayMs, parseRetryAfterMs } from './backoff';
export type { BackoffOptions } from './backoff';
