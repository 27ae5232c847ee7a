import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEventBus } from '@bazaar/event-bus';
import { createLogger } from '@bazaar/logging';
import { freePort, readStackConfig } from '@bazaar/stack';
import { eventually, testStack } from '@bazaar/testing';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ordersCollection } from '../src/order.repository';
import {
  addProduct,
  newUser,
  placeOrder,
  stockOf,
  tapOrderEvents,
  testDatabaseUrl,
  testEnv,
  testExchange,
  type TestUser,
} from './orders.fixture';

const serviceDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** orders as its own process (src/main.ts, the composition root the bundle is built from). */
async function startProcess(
  env: Record<string, string>,
): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: serviceDir,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      PATH: readStackConfig().childEnv.PATH ?? '',
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`orders exited with ${child.exitCode}`);
      const response = await fetch(`${url}/readyz`).catch(() => undefined);
      return response?.ok === true ? true : undefined;
    },
    { timeoutMs: 30_000, what: 'orders process ready' },
  );
  return { url, child };
}

async function kill9(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('kill -9 of orders between reserving and publishing', () => {
  const databaseUrl = testDatabaseUrl();
  const group = `orders-test-${randomBytes(4).toString('hex')}.payment-events`;
  const exchange = testExchange();
  const bus = createEventBus({
    url: testStack().rabbitmq,
    logger: createLogger({ service: 'orders-test', level: 'warn' }),
    name: 'orders-crash-test',
    exchange,
  });
  let tap: Awaited<ReturnType<typeof tapOrderEvents>>;
  let mongo: MongoClient;
  let user: TestUser;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    tap = await tapOrderEvents(bus);
    mongo = new MongoClient(databaseUrl);
    await mongo.connect();
    user = await newUser();
  });

  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) await kill9(child);
    }
    await tap.close();
    await bus.close();
    await mongo.db().dropDatabase();
    await mongo.close();
  });

  it('loses nothing: the orders acknowledged before the kill are published by the next process', async () => {
    const db = mongo.db();
    const productId = await addProduct(db, 100);
    // A deadline far past the test, so no order is cancelled for want of payment however slowly
    // the next process starts: the stock check at the end expects every reservation still held.
    const env = {
      ...testEnv(databaseUrl, group, exchange),
      LOG_LEVEL: 'error',
      ORDER_PAYMENT_DEADLINE_MS: '600000',
    };
    // The first process stores orders but does not publish (its relay is off), so the kill is
    // certain to land after reserving and before publishing.
    const first = await startProcess({ ...env, OUTBOX_RELAY_ENABLED: 'false' });
    children.push(first.child);
    const placed = await Promise.all(
      Array.from({ length: 20 }, () => placeOrder(first.url, user, [{ productId, quantity: 2 }])),
    );
    expect(placed.map((result) => result.status)).toEqual(Array(20).fill(202));
    const ids = placed.map((result) => result.body.id as string);
    await kill9(first.child);

    const stored = await ordersCollection(db)
      .find({ _id: { $in: ids } })
      .toArray();
    expect(stored).toHaveLength(20);
    for (const order of stored) expect(order.outbox).toHaveLength(1);
    expect(await stockOf(db, productId)).toEqual({ stock: 60, reserved: 40 });
    expect(ids.filter((id) => tap.of(id).length > 0)).toEqual([]);

    const second = await startProcess(env);
    children.push(second.child);
    await eventually(
      () =>
        ids.every((id) => tap.of(id).some((e) => e.type === 'order.placed.v1')) ? true : undefined,
      { timeoutMs: 20_000, what: 'every acknowledged order published' },
    );
    await eventually(async () => {
      const left = await ordersCollection(db).countDocuments({
        _id: { $in: ids },
        'outbox.eventId': { $exists: true },
      });
      return left === 0 ? true : undefined;
    });
    expect(await stockOf(db, productId)).toEqual({ stock: 60, reserved: 40 });
    await kill9(second.child);
  });
});
