// Test plumbing: an analytics consumer + warehouse of the test's own (own consumer group, own DuckDB
// file) on the test stack's real RabbitMQ, real tokens from the test stack's users service, and
// queue cleanup.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BazaarEvent } from '@bazaar/contracts';
import {
  CLOUDEVENTS_CONTENT_TYPE,
  DEFAULT_RETRY_POLICY,
  createEventBus,
  groupQueues,
  type EventBus,
} from '@bazaar/event-bus';
import { createLogger } from '@bazaar/logging';
import { testStack } from '@bazaar/testing';
import amqp from 'amqplib';
import { openDuckDbWarehouse } from '../src/duckdb-warehouse';
import type { Warehouse } from '../src/warehouse';

export const logger = createLogger({ service: 'analytics-test', level: 'warn' });

export async function tempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'analytics-test-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export function uniqueGroup(): string {
  return `analytics.test-${randomBytes(4).toString('hex')}`;
}

export async function openTestWarehouse(file: string): Promise<Warehouse> {
  const warehouse = await openDuckDbWarehouse({ path: file, logger, memoryLimit: '1GB' });
  await warehouse.open();
  return warehouse;
}

export function testBus(name: string, url = testStack().rabbitmq): EventBus {
  return createEventBus({ url, logger, name });
}

/**
 * Sends events straight into one group's work queue (the default exchange), as the bus formats
 * them: on the shared test stack, publishing to `bazaar.events` would also feed every other
 * service's consumers (payments would authorize, notifications would email).
 */
export async function sendToGroupQueue(
  group: string,
  events: readonly BazaarEvent[],
  url = testStack().rabbitmq,
): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createConfirmChannel();
    for (let start = 0; start < events.length; start += 2_000) {
      for (const event of events.slice(start, start + 2_000)) {
        channel.sendToQueue(group, Buffer.from(JSON.stringify(event)), {
          persistent: true,
          contentType: CLOUDEVENTS_CONTENT_TYPE,
          messageId: event.id,
          type: event.type,
        });
      }
      await channel.waitForConfirms();
    }
  } finally {
    await connection.close();
  }
}

/** Publishes in confirmed chunks; throws if the broker did not confirm one. */
export async function publishAll(bus: EventBus, events: readonly BazaarEvent[]): Promise<void> {
  const chunk = 2_000;
  for (let start = 0; start < events.length; start += chunk) {
    const results = await bus.publishBatch(
      events.slice(start, start + chunk).map((event) => ({ event })),
      { timeoutMs: 30_000 },
    );
    const failed = results.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}

function queuesOf(group: string) {
  return groupQueues(group, DEFAULT_RETRY_POLICY.delaysMs);
}

/** Messages ready + unacknowledged in the group's work queue, and in its DLQ. */
export async function queueDepths(
  group: string,
  url = testStack().rabbitmq,
): Promise<{ work: number; dlq: number }> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    const queues = queuesOf(group);
    const work = await channel.checkQueue(queues.work);
    const dlq = await channel.checkQueue(queues.deadLetter);
    return { work: work.messageCount, dlq: dlq.messageCount };
  } finally {
    await connection.close();
  }
}

export async function deleteGroupQueues(group: string, url = testStack().rabbitmq): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    const queues = queuesOf(group);
    for (const name of [queues.work, queues.deadLetter, ...queues.retries.map((q) => q.name)]) {
      await channel.deleteQueue(name);
    }
  } finally {
    await connection.close();
  }
}

async function login(email: string, password: string): Promise<string> {
  const response = await fetch(`${testStack().url('users')}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (!response.ok) throw new Error(`login failed: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { accessToken: string }).accessToken;
}

/** An access token of the test stack's local admin. */
export function adminToken(): Promise<string> {
  const { admin } = testStack();
  return login(admin.email, admin.password);
}

/** An access token of a new customer (no admin role). */
export async function customerToken(): Promise<string> {
  const email = `analytics-${randomBytes(4).toString('hex')}@example.com`;
  const password = 'analytics test password';
  const response = await fetch(`${testStack().url('users')}/v1/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password, name: 'Analytics Test' }),
  });
  if (response.status !== 201) throw new Error(`register failed: ${response.status}`);
  return login(email, password);
}
