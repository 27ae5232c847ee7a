import { startTelemetry, withSpan } from '@bazaar/telemetry';
import type { Telemetry } from '@bazaar/telemetry';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHttpClient } from './http-client';
import type { HttpClient } from './http-client';
import { json, startRecordingServer } from './recording-server.fixture';
import type { RecordingServer, Responder } from './recording-server.fixture';

let telemetry: Telemetry;
const cleanups: (() => Promise<void>)[] = [];
beforeEach(() => {
  // Telemetry first, as in a service's main.ts: the client takes its meter from the global provider.
  telemetry = startTelemetry({ serviceName: 'http-client-test' });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await telemetry.shutdown();
});

async function serve(respond: Responder): Promise<RecordingServer> {
  const server = await startRecordingServer(respond);
  cleanups.push(() => server.close());
  return server;
}

function clientFor(server: RecordingServer): HttpClient {
  const client = createHttpClient({
    name: 'psp-sandbox',
    baseUrl: server.url,
    timeoutMs: 2000,
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    breaker: { consecutiveFailures: 5, halfOpenAfterMs: 1000 },
  });
  cleanups.push(() => client.close());
  return client;
}

function traceparentParts(value: string | string[] | undefined): string[] {
  expect(value).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  return String(value).split('-');
}

const flakyOnce: Responder = (_request, response, hit) => json(response, hit === 1 ? 503 : 200, {});

describe('trace propagation', () => {
  it("sends a traceparent carrying the active span's trace id, from a client span of its own", async () => {
    const server = await serve(flakyOnce);
    const client = clientFor(server);

    const parent = await withSpan(telemetry.tracer, 'place order', {}, async (span) => {
      await client.request({ method: 'GET', path: '/v1/authorizations/1' });
      return span.spanContext();
    });

    expect(server.requests).toHaveLength(2);
    const [first, second] = server.requests.map((request) =>
      traceparentParts(request.headers['traceparent']),
    );
    expect(first?.[1]).toBe(parent.traceId);
    expect(first?.[2]).not.toBe(parent.spanId);
    // Both attempts belong to the same client span.
    expect(second).toEqual(first);
  });

  it('starts a new trace when no span is active', async () => {
    const server = await serve(flakyOnce);
    await clientFor(server).request({ method: 'GET', path: '/' });
    const [, traceId] = traceparentParts(server.requests[0]?.headers['traceparent']);
    expect(traceId).not.toBe('0'.repeat(32));
  });

  it('records one CLIENT span per call with the outcome', async () => {
    const exporter = new InMemorySpanExporter();
    trace.disable();
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
    );
    const server = await serve(flakyOnce);
    const client = clientFor(server);

    await client.request({ method: 'GET', path: '/v1/x', query: { secret: 's' } });
    server.respondWith((_request, response) => json(response, 500, {}));
    await expect(client.request({ method: 'DELETE', path: '/v1/y' })).rejects.toThrow();

    const [ok, failed] = exporter.getFinishedSpans();
    expect(ok?.kind).toBe(SpanKind.CLIENT);
    expect(ok?.name).toBe('GET');
    expect(ok?.attributes).toMatchObject({
      'peer.service': 'psp-sandbox',
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'http.request.resend_count': 1,
      'url.full': `${server.url}/v1/x`,
    });
    expect(ok?.status.code).toBe(SpanStatusCode.UNSET);
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed?.attributes['error.type']).toBe('UPSTREAM_FAILED');
    const traceparent = server.requests.at(-1)?.headers['traceparent'];
    expect(traceparentParts(traceparent)[2]).toBe(failed?.spanContext().spanId);
  });
});

describe('metrics', () => {
  it('records every attempt in http.client.request.duration and exposes the breaker state', async () => {
    const server = await serve(flakyOnce);
    await clientFor(server).request({ method: 'GET', path: '/' });

    const { body } = await telemetry.renderMetrics();
    const counts = body
      .split('\n')
      .filter((line) => line.startsWith('http_client_request_duration_seconds_count{'));
    expect(counts).toHaveLength(2);
    const retried = counts.find((line) => line.includes('http_response_status_code="503"'));
    expect(retried).toContain('error_type="503"');
    expect(retried).toContain('peer_service="psp-sandbox"');
    expect(retried).toMatch(/ 1$/);
    const succeeded = counts.find((line) => line.includes('http_response_status_code="200"'));
    expect(succeeded).not.toContain('error_type');
    expect(succeeded).toMatch(/ 1$/);
    expect(body).toMatch(
      /^http_client_circuit_breaker_state\{peer_service="psp-sandbox",state="closed",.*\} 1$/m,
    );
    expect(body).toMatch(
      /^http_client_circuit_breaker_state\{peer_service="psp-sandbox",state="open",.*\} 0$/m,
    );
  });
});
