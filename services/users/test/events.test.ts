import { randomBytes } from 'node:crypto';
import { validateEvent, type EventTypes, type UserRegisteredV1 } from '@bazaar/contracts';
import {
  createEventBus,
  startPgOutboxRelay,
  type Consumer,
  type EventBus,
  type PgOutboxRelay,
} from '@bazaar/event-bus';
import { createLogger } from '@bazaar/logging';
import { eventually, testStack } from '@bazaar/testing';
import { connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  createTestDatabase,
  PASSWORD,
  startUsers,
  uniqueEmail,
  type RunningUsers,
  type TestDatabase,
} from './users.fixture';

// user.registered.v1 leaves through the PostgreSQL outbox and the relay, wired as in main.ts, and
// arrives on RabbitMQ valid against its contract. The test uses its own exchange and consumer group
// on the test stack's broker and removes them afterwards.

const suffix = randomBytes(4).toString('hex');
const exchange = `users-test-${suffix}`;
const group = `users-test.registered-${suffix}`;
const logger = createLogger({ service: 'users', level: 'silent' });

let database: TestDatabase;
let users: RunningUsers;
let bus: EventBus;
let relay: PgOutboxRelay;
let consumer: Consumer;
const received: UserRegisteredV1[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  users = await startUsers(database.url);
  bus = createEventBus({
    url: testStack().rabbitmq,
    logger,
    validate: validateEvent,
    name: 'users-test',
    exchange,
  });
  consumer = await bus.consume<EventTypes>({
    group,
    handlers: {
      'user.registered.v1': (event) => {
        received.push(event);
        return Promise.resolve();
      },
    },
  });
  relay = startPgOutboxRelay({ pool: users.pool, bus, logger });
});

afterAll(async () => {
  await relay?.stop();
  await consumer?.close();
  await bus?.close();
  const connection = await connect(testStack().rabbitmq);
  try {
    const channel = await connection.createChannel();
    if (consumer !== undefined) {
      const { work, deadLetter, retries } = consumer.queues;
      for (const queue of [work, deadLetter, ...retries.map((retry) => retry.name)]) {
        await channel.deleteQueue(queue);
      }
    }
    await channel.deleteExchange(exchange);
    await channel.close();
  } finally {
    await connection.close();
  }
  await users?.close();
  await database?.drop();
});

describe('user.registered.v1', () => {
  it('is published once per registration, valid against its contract, carrying the request’s trace', async () => {
    const email = uniqueEmail('event');
    const traceId = randomBytes(16).toString('hex');
    const reply = await call<{ id: string }>(users.url, 'POST', '/v1/users', {
      body: { email, password: PASSWORD, name: 'Ada Lovelace' },
      headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    });
    expect(reply.status).toBe(201);

    const event = await eventually(() => received.find((e) => e.subject === reply.body.id), {
      what: 'user.registered.v1 on the bus',
    });
    expect(validateEvent(event)).toMatchObject({ ok: true });
    expect(event).toMatchObject({
      type: 'user.registered.v1',
      source: '/users',
      subject: reply.body.id,
      data: { userId: reply.body.id, email, name: 'Ada Lovelace' },
    });
    expect(event.traceparent?.split('-')[1]).toBe(traceId);

    // The relay marks the row published once the broker has confirmed it, which may be just after
    // the message reached us.
    const rows = await eventually(
      async () => {
        const { rows } = await users.pool.query<{ published: boolean }>(
          'SELECT published_at IS NOT NULL AS published FROM outbox WHERE event_id = $1',
          [event.id],
        );
        return rows[0]?.published === true ? rows : undefined;
      },
      { what: 'the outbox row marked published' },
    );
    expect(rows).toEqual([{ published: true }]);
    expect(received.filter((e) => e.subject === reply.body.id)).toHaveLength(1);
  });

  it('is not published for a refused registration', async () => {
    const email = uniqueEmail('dup');
    const first = await call<{ id: string }>(users.url, 'POST', '/v1/users', {
      body: { email, password: PASSWORD, name: 'First' },
    });
    const second = await call(users.url, 'POST', '/v1/users', {
      body: { email, password: PASSWORD, name: 'Second' },
    });
    expect(second.status).toBe(409);
    await eventually(() => received.find((e) => e.subject === first.body.id), {
      what: 'the first registration on the bus',
    });
    expect(received.filter((e) => e.data.email === email)).toHaveLength(1);
  });
});
