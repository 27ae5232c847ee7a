import { createLogger } from '@bazaar/logging';
import { startTelemetry } from '@bazaar/telemetry';
import { startPrivateServers, testStack, type PrivateServers } from '@bazaar/testing';
import amqplib from 'amqplib';
import { Etcd3 } from 'etcd3';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type ReadinessCheck } from '../src/index';

// Acceptance (foundation issue): the kit's readiness runs against the real servers — PostgreSQL,
// Redis, RabbitMQ, FerretDB and etcd — and turns red when PostgreSQL stops, green when it returns.
// PostgreSQL is a private copy, so stopping it disturbs no other test.

let servers: PrivateServers;
let pool: pg.Pool;
let redis: Redis;
let mongo: MongoClient;
let etcd: Etcd3;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  servers = await startPrivateServers(['postgres']);
  const stack = testStack();
  pool = new pg.Pool({ connectionString: servers.urls.postgres, connectionTimeoutMillis: 5_000 });
  // Idle connections die when the server stops; the pool replaces them. Without a listener the
  // pool's 'error' event would crash the process, as it would crash a service.
  pool.on('error', () => undefined);
  redis = new Redis(stack.redis, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    commandTimeout: 5_000,
  });
  mongo = new MongoClient(stack.mongo, { serverSelectionTimeoutMS: 5_000, directConnection: true });
  etcd = new Etcd3({ hosts: stack.etcd });
  closers.push(
    () => pool.end(),
    () => redis.quit(),
    () => mongo.close(),
    () => Promise.resolve(etcd.close()),
    () => servers.close(),
  );
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
});

// Deadlines far above a healthy answer on a loaded machine: the checks that should pass must not
// time out, and the stopped PostgreSQL fails at once (connection refused), not by a deadline.
const CHECK_TIMEOUT_MS = 10_000;

function checks(): ReadinessCheck[] {
  const stack = testStack();
  const probes: ReadinessCheck[] = [
    { name: 'postgres', check: () => pool.query('SELECT 1') },
    { name: 'redis', check: async () => expect(await redis.ping()).toBe('PONG') },
    {
      name: 'rabbitmq',
      check: async () => {
        const connection = await amqplib.connect(stack.rabbitmq, { timeout: 5_000 });
        await connection.close();
      },
    },
    { name: 'mongo', check: () => mongo.db('admin').command({ ping: 1 }) },
    { name: 'etcd', check: () => etcd.maintenance.status() },
  ];
  return probes.map((probe) => ({ ...probe, timeoutMs: CHECK_TIMEOUT_MS }));
}

function app() {
  return createApp({
    config: { REQUEST_TIMEOUT_MS: 5_000, BODY_LIMIT_BYTES: 1024 * 1024 },
    logger: createLogger({ service: 'kit-readiness-test', level: 'silent' }),
    telemetry: startTelemetry({ serviceName: 'kit-readiness-test' }),
    readinessChecks: checks(),
  });
}

describe('readiness against the real servers', () => {
  it('is ready when PostgreSQL, Redis, RabbitMQ, FerretDB and etcd all answer', async () => {
    const response = await app().inject({ method: 'GET', url: '/readyz' });
    expect(response.json()).toEqual({
      status: 'ready',
      checks: { postgres: 'ok', redis: 'ok', rabbitmq: 'ok', mongo: 'ok', etcd: 'ok' },
    });
    expect(response.statusCode).toBe(200);
  });

  it('turns red while PostgreSQL is stopped and green again when it returns', async () => {
    const instance = app();
    await servers.stop('postgres');
    const down = await instance.inject({ method: 'GET', url: '/readyz' });
    expect(down.statusCode).toBe(503);
    expect(down.headers['content-type']).toMatch(/^application\/problem\+json/);
    const problem = down.json<{ code: string; detail: string }>();
    expect(problem.code).toBe('SERVICE_UNAVAILABLE');
    expect(problem.detail).toContain('postgres');
    expect(JSON.stringify(problem)).toContain('"redis":"ok"');
    // Liveness never depends on a dependency: the process is fine.
    expect((await instance.inject({ method: 'GET', url: '/livez' })).statusCode).toBe(200);

    await servers.start('postgres');
    const up = await instance.inject({ method: 'GET', url: '/readyz' });
    expect(up.statusCode).toBe(200);
    expect(up.json<{ checks: Record<string, string> }>().checks.postgres).toBe('ok');
  });
});
