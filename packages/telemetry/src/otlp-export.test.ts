import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTelemetry } from './telemetry';

interface ReceivedRequest {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }
});

async function listen(server: Server): Promise<string> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A minimal OTLP/HTTP receiver: records each request and answers 200 with an empty body. */
async function startReceiver(): Promise<{ url: string; requests: ReceivedRequest[] }> {
  const requests: ReceivedRequest[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests.push({
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: Buffer.concat(chunks),
      });
      response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  return { url: await listen(server), requests };
}

/** Accepts connections and never answers: a collector that hangs. */
async function startBlackHole(): Promise<string> {
  return listen(createServer(() => undefined));
}

describe('trace export over OTLP/HTTP protobuf', () => {
  it('POSTs ended spans to /v1/traces as protobuf when shutdown flushes', async () => {
    const receiver = await startReceiver();
    const telemetry = startTelemetry({
      serviceName: 'export-test',
      otlpEndpoint: receiver.url,
    });
    telemetry.tracer.startSpan('checkout.step').end();
    expect(receiver.requests).toHaveLength(0);

    await telemetry.shutdown();

    expect(receiver.requests).toHaveLength(1);
    const [request] = receiver.requests;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/v1/traces');
    expect(request?.headers['content-type']).toBe('application/x-protobuf');
    // Protobuf stores strings as raw UTF-8, so the resource and span names are readable in the payload.
    expect(request?.body.includes('export-test')).toBe(true);
    expect(request?.body.includes('checkout.step')).toBe(true);
  });

  it('accepts an endpoint with a trailing slash', async () => {
    const receiver = await startReceiver();
    const telemetry = startTelemetry({
      serviceName: 'export-test',
      otlpEndpoint: `${receiver.url}/`,
    });
    telemetry.tracer.startSpan('x').end();
    await telemetry.shutdown();
    expect(receiver.requests.map((request) => request.url)).toEqual(['/v1/traces']);
  });

  it('finishes shutdown within its deadline when the collector never answers', async () => {
    const url = await startBlackHole();
    const telemetry = startTelemetry({
      serviceName: 'export-test',
      otlpEndpoint: url,
      shutdownTimeoutMs: 100,
    });
    telemetry.tracer.startSpan('lost').end();

    const startedAt = performance.now();
    await telemetry.shutdown();
    // The exporter's own timeout is 2 s; returning well before it proves the deadline cut the wait short.
    expect(performance.now() - startedAt).toBeLessThan(1200);
  });

  it('finishes shutdown within its deadline when nothing listens on the endpoint', async () => {
    const server = createServer();
    const url = await listen(server);
    server.close();
    servers.splice(servers.indexOf(server), 1);
    await once(server, 'close');
    const telemetry = startTelemetry({
      serviceName: 'export-test',
      otlpEndpoint: url,
      shutdownTimeoutMs: 100,
    });
    telemetry.tracer.startSpan('lost').end();

    const startedAt = performance.now();
    await expect(telemetry.shutdown()).resolves.toBeUndefined();
    // The exporter retries a refused connection after at least 800 ms of backoff.
    expect(performance.now() - startedAt).toBeLessThan(700);
  });

  it('creates and propagates spans without an endpoint', async () => {
    const telemetry = startTelemetry({ serviceName: 'no-export' });
    const span = telemetry.tracer.startSpan('local');
    expect(span.isRecording()).toBe(true);
    expect(span.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    span.end();
    await telemetry.shutdown();
  });
});
