// The analytics bundle as `npm start` runs it (services/analytics/dist/main.mjs), in child processes
// on the test stack's broker with a warehouse file of their own: a second process on the same file
// refuses to start; kill -9 in the middle of ingesting loses nothing and double-counts nothing. Events
// go straight into the child's group queue, so the test stack's other consumers never see them.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { freePort, readStackConfig, repoRoot } from '@bazaar/stack';
import { eventually, testStack } from '@bazaar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminToken,
  deleteGroupQueues,
  queueDepths,
  sendToGroupQueue,
  tempDir,
  uniqueGroup,
} from './analytics.fixture';
import { expectedOf, generateEvents, withDuplicates } from './events.fixture';

const bundle = path.join(repoRoot, 'services', 'analytics', 'dist', 'main.mjs');

interface Child {
  readonly process: ChildProcess;
  readonly url: string;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

async function startChild(env: Record<string, string>): Promise<Child> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--enable-source-maps', bundle], {
    cwd: path.dirname(bundle),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: readStackConfig().childEnv.PATH ?? '',
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      RABBITMQ_URL: testStack().rabbitmq,
      JWKS_URL: `${testStack().url('users')}/.well-known/jwks.json`,
      ...env,
    },
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { process: child, url: `http://127.0.0.1:${port}`, output: () => output, exited };
}

async function waitReady(child: Child): Promise<void> {
  await eventually(
    async () => {
      if (child.process.exitCode !== null) {
        throw new Error(`exited ${child.process.exitCode}: ${child.output()}`);
      }
      const response = await fetch(`${child.url}/readyz`);
      return response.ok ? true : undefined;
    },
    { timeoutMs: 30_000, what: 'analytics child ready' },
  );
}

async function storedEvents(child: Child, token: string): Promise<number> {
  const response = await fetch(`${child.url}/v1/analytics/summary`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (!response.ok) throw new Error(`summary: ${response.status}`);
  return ((await response.json()) as { events: number }).events;
}

describe('analytics process crashes', () => {
  const group = uniqueGroup();
  const children: Child[] = [];
  let dir: { dir: string; remove: () => Promise<void> };
  let env: Record<string, string>;

  beforeAll(async () => {
    if (!existsSync(bundle)) {
      throw new Error(`${bundle} is missing: run node stack/bin/bazaar.mjs build`);
    }
    dir = await tempDir();
    env = {
      WAREHOUSE_PATH: path.join(dir.dir, 'warehouse.duckdb'),
      CONSUMER_GROUP: group,
      BATCH_MAX_EVENTS: '500',
      BATCH_MAX_WAIT_MS: '50',
      WAREHOUSE_MEMORY_LIMIT: '512MB',
    };
  });

  afterAll(async () => {
    for (const child of children) {
      if (child.process.exitCode === null) child.process.kill('SIGKILL');
    }
    await deleteGroupQueues(group).catch(() => undefined);
    await dir.remove();
  });

  it('lets only one process open the warehouse file; the second exits with the reason', async () => {
    const first = await startChild(env);
    children.push(first);
    await waitReady(first);
    const second = await startChild(env);
    children.push(second);
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain('warehouse_locked');
    expect(second.output()).toContain('is open in another process');
    // The first one is unaffected.
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
  });

  it('loses nothing and double-counts nothing when killed with SIGKILL mid-ingestion', async () => {
    const first = children[0];
    if (first === undefined) throw new Error('the first test starts the writer');
    const token = await adminToken();
    const distinct = generateEvents(18_000, 21);
    const stream = withDuplicates(distinct, 20_000 - distinct.length, 22);
    const expected = expectedOf(distinct);

    const publishing = sendToGroupQueue(group, stream);
    const atKill = await eventually(
      async () => {
        const stored = await storedEvents(first, token);
        return stored >= 3_000 ? stored : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 20, what: 'ingestion under way' },
    );
    first.process.kill('SIGKILL');
    expect(await first.exited).toBe(null);
    // It died part way through: deliveries it held unacknowledged go back to the queue.
    expect(atKill).toBeLessThan(expected.events);
    await publishing;

    const restarted = await startChild(env);
    children.push(restarted);
    await waitReady(restarted);
    await eventually(
      async () => ((await storedEvents(restarted, token)) === expected.events ? true : undefined),
      { timeoutMs: 120_000, intervalMs: 250, what: `${expected.events} events stored` },
    );
    await eventually(async () => ((await queueDepths(group)).work === 0 ? true : undefined), {
      timeoutMs: 60_000,
      what: 'the work queue drained',
    });
    await sleep(500);
    expect(await storedEvents(restarted, token)).toBe(expected.events);

    restarted.process.kill('SIGTERM');
    expect(await restarted.exited).toBe(0);
    expect(await queueDepths(group)).toEqual({ work: 0, dlq: 0 });

    const instance = await DuckDBInstance.create(env.WAREHOUSE_PATH);
    try {
      const connection = await instance.connect();
      const [row] = (
        await connection.runAndReadAll(`
          SELECT (SELECT count(*) FROM raw_events) AS events,
                 (SELECT count(DISTINCT event_id) FROM raw_events) AS ids,
                 (SELECT count(*) FROM order_facts WHERE kind = 'confirmed') AS confirmed,
                 (SELECT count(*) FROM order_facts WHERE kind = 'cancelled') AS cancelled,
                 (SELECT CAST(sum(amount) AS BIGINT) FROM payment_facts WHERE kind = 'captured') AS captured,
                 (SELECT count(*) FROM payment_facts) AS payments,
                 (SELECT count(*) FROM raw_events WHERE type LIKE 'payment.%') AS payment_events`)
      ).getRowObjectsJS();
      expect(row).toEqual({
        events: BigInt(expected.events),
        ids: BigInt(expected.events),
        confirmed: BigInt(expected.ordersConfirmed),
        cancelled: BigInt(expected.ordersCancelled),
        captured: BigInt(expected.captured.reduce((sum, money) => sum + money.amount, 0)),
        payments: row?.payment_events,
        payment_events: row?.payment_events,
      });
      connection.closeSync();
    } finally {
      instance.closeSync();
    }
  });
});
