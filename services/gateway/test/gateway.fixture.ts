import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createLogger } from '@bazaar/logging';
import { createEtcdRegistry, type EtcdRegistry, type Registration } from '@bazaar/registry';
import { startTelemetry, type Telemetry } from '@bazaar/telemetry';
import { testStack } from '@bazaar/testing';
import { Redis } from 'ioredis';
import { buildGateway, type Gateway } from '../src/app';
import { parseDeclarative } from '../src/declarative';

/** A small upstream: answers JSON describing what it received; behaviour switchable per test. */
export interface Upstream {
  readonly id: string;
  readonly url: string;
  hits: number;
  /** Status to answer with (200 by default). */
  status: number;
  /** Delay before answering. */
  delayMs: number;
  /** When set, the answer is this many bytes of `x` (text/plain, length announced) instead of the JSON echo. */
  bodyBytes: number | undefined;
  readonly received: {
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
    body: string;
  }[];
  registration: Registration | undefined;
  /** Stops listening and drops connections, without deregistering (a crash). */
  kill(): Promise<void>;
}

export async function startUpstream(id: string): Promise<Upstream> {
  const sockets = new Set<Socket>();
  const upstream: Upstream = {
    id,
    url: '',
    hits: 0,
    status: 200,
    delayMs: 0,
    bodyBytes: undefined,
    received: [],
    registration: undefined,
    kill: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      upstream.hits += 1;
      const body = Buffer.concat(chunks).toString();
      upstream.received.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body,
      });
      const answer = () => {
        if (response.destroyed) return;
        if (upstream.bodyBytes !== undefined) {
          response.writeHead(upstream.status, {
            'content-type': 'text/plain',
            'content-length': String(upstream.bodyBytes),
          });
          response.end('x'.repeat(upstream.bodyBytes));
          return;
        }
        response.writeHead(upstream.status, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ instance: id, url: request.url, body }));
      };
      if (upstream.delayMs > 0) setTimeout(answer, upstream.delayMs);
      else answer();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  Object.assign(upstream, { url: `http://127.0.0.1:${port}` });
  return upstream;
}

export interface GatewayUnderTest {
  readonly url: string;
  readonly gateway: Gateway;
  readonly telemetry: Telemetry;
  /** Every log line the gateway wrote at info level or above, parsed. */
  readonly logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** A fresh etcd key prefix and registry, so concurrent runs never see each other's instances. */
export function createTestRegistry(): EtcdRegistry {
  return createEtcdRegistry({
    url: testStack().etcd,
    keyPrefix: `/bazaar-test/${randomUUID()}/`,
    leaseTtlSeconds: 5,
  });
}

export async function register(
  registry: EtcdRegistry,
  service: string,
  upstream: Upstream,
): Promise<void> {
  upstream.registration = await registry.register({
    service,
    id: upstream.id,
    address: upstream.url,
    healthUrl: `${upstream.url}/readyz`,
  });
}

/** Starts a gateway in-process on a free port with `yaml` as its declarative file. */
export async function startGateway(
  yaml: string,
  registry: EtcdRegistry,
  options: { redis?: boolean } = {},
): Promise<GatewayUnderTest> {
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({
    service: 'gateway',
    level: 'info',
    destination: {
      write(line: string) {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  });
  const telemetry = startTelemetry({ serviceName: 'gateway' });
  const redis = options.redis
    ? new Redis(testStack().redis, { maxRetriesPerRequest: 1, commandTimeout: 1000 })
    : undefined;
  const gateway = await buildGateway({
    config: {
      REQUEST_TIMEOUT_MS: 10_000,
      BODY_LIMIT_BYTES: 1024 * 1024,
      GATEWAY_TRUSTED_PROXIES: ['127.0.0.1'],
      GATEWAY_CONTRACTS_DIR: new URL('../../../contracts/http', import.meta.url).pathname,
    },
    logger,
    telemetry,
    declarative: parseDeclarative(yaml),
    discovery: registry,
    redis,
  });
  await gateway.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = gateway.app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    gateway,
    telemetry,
    logs,
    async close() {
      await gateway.app.close();
      await gateway.close();
      redis?.disconnect();
      await telemetry.shutdown();
    },
  };
}
