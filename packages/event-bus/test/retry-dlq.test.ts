import { spawn } from 'node:child_process';
import { connect } from 'amqplib';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@bazaar/stack';
import { eventually, testStack } from '@bazaar/testing';
import {
  createEventBus,
  openDeadLetterAdmin,
  type DeadLetterAdmin,
  type EventBus,
} from '../src/index';
import {
  removeTopology,
  TEST_TYPE,
  testEvent,
  testLogger,
  uniqueName,
  validateTestEvent,
  type TestEvent,
} from './broker-fixture';

const url = testStack().rabbitmq;
const exchange = uniqueName('bus-test.events');
const retryDelaysMs = [300, 900];
const groups: string[] = [];
let bus: EventBus;
let admin: DeadLetterAdmin;

beforeAll(async () => {
  bus = createEventBus({ url, logger: testLogger, validate: validateTestEvent, exchange });
  admin = await openDeadLetterAdmin(url);
});

afterAll(async () => {
  await bus.close();
  await admin.close();
  await removeTopology(url, { groups, exchange }, retryDelaysMs);
});

/** Runs `npm run dlq -- …` as the user would (the same entry point, in its own process). */
function runDlqCli(
  args: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'packages/event-bus/src/dlq-cli.ts'), ...args],
      { cwd: repoRoot, env: { RABBITMQ_URL: url }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function deadLetterCount(group: string, expected: number) {
  return eventually(async () => {
    const letters = await admin.list(group);
    return letters.length === expected ? letters : undefined;
  });
}

describe('a handler that throws', () => {
  it('is retried after increasing delays, then dead-lettered with its error; replay after the fix succeeds', async () => {
    const group = uniqueName('bus-test.retry');
    groups.push(group);
    let isBroken = true;
    const attempts: { attempt: number; at: number }[] = [];
    const handled: TestEvent[] = [];
    const consumer = await bus.consume({
      group,
      retry: { delaysMs: retryDelaysMs, maxAttempts: 3 },
      handlers: {
        [TEST_TYPE]: (event, delivery) => {
          attempts.push({ attempt: delivery.attempt, at: performance.now() });
          if (isBroken) return Promise.reject(new Error('payment processor exploded'));
          handled.push(event as TestEvent);
          return Promise.resolve();
        },
      },
    });
    const event = testEvent(42);
    await bus.publish(event);

    const [letter] = await deadLetterCount(group, 1);
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    const [first, second, third] = attempts.map((a) => a.at) as [number, number, number];
    // The delay queues' TTLs: never earlier than the tier (a little slack for timer granularity).
    expect(second - first).toBeGreaterThanOrEqual(280);
    expect(third - second).toBeGreaterThanOrEqual(880);
    expect(letter).toMatchObject({
      eventId: event.id,
      type: TEST_TYPE,
      reason: 'handler-failed',
      error: 'payment processor exploded',
      attempts: 3,
    });
    expect(Date.parse(letter?.failedAt ?? '')).not.toBeNaN();
    expect(handled).toEqual([]);

    isBroken = false;
    const replay = await runDlqCli(['replay', group]);
    expect(replay).toMatchObject({
      code: 0,
      stdout: `replayed 1 message(s) from ${group}.dlq to ${group}\n`,
    });

    await eventually(() => (handled.length === 1 ? true : undefined));
    expect(handled).toEqual([event]);
    // The replayed message starts over at attempt 1.
    expect(attempts.at(-1)?.attempt).toBe(1);
    await deadLetterCount(group, 0);
    await consumer.close();
  });
});

describe('a message that keeps coming back unacknowledged (it crashes every consumer)', () => {
  it('is moved to the DLQ by the broker after the delivery limit', async () => {
    const group = uniqueName('bus-test.poison');
    groups.push(group);
    await (
      await bus.consume({
        group,
        deliveryLimit: 2,
        handlers: { [TEST_TYPE]: () => Promise.resolve() },
      })
    ).close();
    const poison = testEvent(13);
    await bus.publish(poison);
    // Consumers that die before acknowledging: the broker gets every delivery back.
    const model = await connect(url);
    let deliveries = 0;
    try {
      const channel = await model.createChannel();
      await channel.consume(group, (message) => {
        if (message === null) return;
        deliveries += 1;
        channel.nack(message, false, true);
      });
      const [letter] = await deadLetterCount(group, 1);
      expect(letter).toMatchObject({ eventId: poison.id, reason: 'delivery_limit' });
    } finally {
      await model.close();
    }
    // Delivered once, then returned twice more within the limit of 2 returns.
    expect(deliveries).toBe(3);
  });
});

describe('npm run dlq', () => {
  it('lists without removing, replays and drops one message by id, then drops all', async () => {
    const group = uniqueName('bus-test.dlq');
    groups.push(group);
    const fixed = new Set<string>();
    const handled: string[] = [];
    const consumer = await bus.consume({
      group,
      retry: { delaysMs: [], maxAttempts: 1 },
      handlers: {
        [TEST_TYPE]: (event) => {
          if (!fixed.has(event.id)) return Promise.reject(new Error(`cannot handle ${event.id}`));
          handled.push(event.id);
          return Promise.resolve();
        },
      },
    });
    const [a, b, c] = [testEvent(1), testEvent(2), testEvent(3)];
    await bus.publishBatch([a, b, c].map((event) => ({ event })));
    await deadLetterCount(group, 3);

    const list = await runDlqCli(['list', group]);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^EVENT ID\s+TYPE\s+REASON\s+ATTEMPTS\s+FAILED AT\s+ERROR$/);
    for (const event of [a, b, c]) {
      expect(lines.find((line) => line.startsWith(event.id))).toMatch(
        new RegExp(
          `${TEST_TYPE.replaceAll('.', '\\.')}\\s+handler-failed\\s+1\\s+\\S+\\s+cannot handle ${event.id}$`,
        ),
      );
    }
    const json = await runDlqCli(['list', group, '--json']);
    expect(
      (JSON.parse(json.stdout) as { eventId: string }[]).map((letter) => letter.eventId).sort(),
    ).toEqual([a.id, b.id, c.id].sort());

    fixed.add(a.id);
    expect((await runDlqCli(['replay', group, '--id', a.id])).stdout).toBe(
      `replayed 1 message(s) from ${group}.dlq to ${group}\n`,
    );
    await eventually(() => (handled.includes(a.id) ? true : undefined));
    expect((await deadLetterCount(group, 2)).map((letter) => letter.eventId).sort()).toEqual(
      [b.id, c.id].sort(),
    );

    const refused = await runDlqCli(['drop', group]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--all');
    expect((await runDlqCli(['drop', group, '--id', b.id])).stdout).toBe(
      `dropped 1 message(s) from ${group}.dlq\n`,
    );
    expect((await admin.list(group)).map((letter) => letter.eventId)).toEqual([c.id]);
    expect((await runDlqCli(['drop', group, '--all'])).stdout).toBe(
      `dropped 1 message(s) from ${group}.dlq\n`,
    );
    expect(await admin.list(group)).toEqual([]);
    expect(handled).toEqual([a.id]);
    await consumer.close();
  });

  it('says which queue is missing and fails', async () => {
    const result = await runDlqCli(['list', 'bus-test.no-such-group']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('dlq list: No dead-letter queue bus-test.no-such-group.dlq\n');
  });
});
