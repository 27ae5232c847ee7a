import { isAppError } from '@bazaar/errors';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpClient } from './http-client';
import type { HttpClient, HttpClientOptions, HttpRequest } from './http-client';
import { json, startRecordingServer } from './recording-server.fixture';
import type { RecordingServer, Responder } from './recording-server.fixture';

const HALF_OPEN_AFTER_MS = 150;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(respond: Responder): Promise<RecordingServer> {
  const server = await startRecordingServer(respond);
  cleanups.push(() => server.close());
  return server;
}

function clientFor(
  server: RecordingServer,
  overrides: Partial<HttpClientOptions> = {},
): HttpClient {
  const client = createHttpClient({
    name: 'upstream',
    baseUrl: server.url,
    timeoutMs: 2000,
    retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    breaker: { consecutiveFailures: 3, halfOpenAfterMs: HALF_OPEN_AFTER_MS },
    ...overrides,
  });
  cleanups.push(() => client.close());
  return client;
}

/** Sends `request` and returns the error code it failed with, or the status it answered. */
async function outcomeOf(client: HttpClient, request: HttpRequest): Promise<string | number> {
  try {
    return (await client.request(request)).status;
  } catch (error) {
    if (isAppError(error)) return error.code;
    throw error;
  }
}

const get: HttpRequest = { method: 'GET', path: '/' };
const failing: Responder = (_request, response) => json(response, 500, {});
const healthy: Responder = (_request, response) => json(response, 200, {});

describe('circuit breaker', () => {
  it('opens after consecutive failures and then fails fast without reaching the server', async () => {
    const server = await serve(failing);
    const client = clientFor(server);

    for (let call = 0; call < 3; call += 1) {
      expect(await outcomeOf(client, get)).toBe('UPSTREAM_FAILED');
    }
    expect(client.breakerState).toBe('open');
    for (let call = 0; call < 5; call += 1) {
      expect(await outcomeOf(client, get)).toBe('CIRCUIT_OPEN');
    }
    expect(server.requests).toHaveLength(3);
  });

  it('lets one probe through after halfOpenAfterMs and closes when it succeeds', async () => {
    const server = await serve(failing);
    const client = clientFor(server);
    for (let call = 0; call < 3; call += 1) await outcomeOf(client, get);
    expect(client.breakerState).toBe('open');

    server.respondWith(healthy);
    expect(await outcomeOf(client, get)).toBe('CIRCUIT_OPEN');
    await sleep(HALF_OPEN_AFTER_MS + 50);

    expect(await outcomeOf(client, get)).toBe(200);
    expect(client.breakerState).toBe('closed');
    expect(await outcomeOf(client, get)).toBe(200);
    expect(server.requests).toHaveLength(5);
  });

  it('opens again when the probe fails', async () => {
    const server = await serve(failing);
    const client = clientFor(server);
    for (let call = 0; call < 3; call += 1) await outcomeOf(client, get);
    await sleep(HALF_OPEN_AFTER_MS + 50);

    expect(await outcomeOf(client, get)).toBe('UPSTREAM_FAILED');
    expect(client.breakerState).toBe('open');
    expect(await outcomeOf(client, get)).toBe('CIRCUIT_OPEN');
    expect(server.requests).toHaveLength(4);
  });

  it('does not count 4xx answers as failures', async () => {
    const server = await serve((_request, response) => json(response, 404, {}));
    const client = clientFor(server);
    for (let call = 0; call < 6; call += 1) expect(await outcomeOf(client, get)).toBe(404);
    expect(client.breakerState).toBe('closed');
    expect(server.requests).toHaveLength(6);
  });

  it('counts timeouts and dropped connections as failures', async () => {
    const server = await serve((_request, response, hit) => {
      if (hit === 1) response.socket?.destroy();
    });
    const client = clientFor(server, { timeoutMs: 100 });
    expect(await outcomeOf(client, get)).toBe('UPSTREAM_FAILED');
    expect(await outcomeOf(client, get)).toBe('UPSTREAM_TIMEOUT');
    expect(await outcomeOf(client, get)).toBe('UPSTREAM_TIMEOUT');
    expect(client.breakerState).toBe('open');
    expect(await outcomeOf(client, get)).toBe('CIRCUIT_OPEN');
    expect(server.requests).toHaveLength(3);
  });

  it('needs the failures to be consecutive: a success in between resets the count', async () => {
    const server = await serve((_request, response, hit) =>
      json(response, hit === 3 ? 200 : 500, {}),
    );
    const client = clientFor(server);
    const outcomes = [];
    for (let call = 0; call < 5; call += 1) outcomes.push(await outcomeOf(client, get));
    expect(outcomes).toEqual([
      'UPSTREAM_FAILED',
      'UPSTREAM_FAILED',
      200,
      'UPSTREAM_FAILED',
      'UPSTREAM_FAILED',
    ]);
    expect(client.breakerState).toBe('closed');
  });

  it('counts each attempt, so an opening breaker stops a call from retrying further', async () => {
    const server = await serve((_request, response) => json(response, 503, {}));
    const client = clientFor(server, {
      retry: { maxAttempts: 10, baseDelayMs: 1, maxDelayMs: 5 },
    });
    expect(await outcomeOf(client, get)).toBe('CIRCUIT_OPEN');
    expect(server.requests).toHaveLength(3);
  });

  it('does not count a call the caller cancelled', async () => {
    const server = await serve(() => undefined);
    const client = clientFor(server, {
      breaker: { consecutiveFailures: 1, halfOpenAfterMs: 10_000 },
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('cancelled')), 20);
    await expect(client.request({ ...get, signal: controller.signal })).rejects.toThrow(
      'cancelled',
    );
    expect(client.breakerState).toBe('closed');
  });
});
