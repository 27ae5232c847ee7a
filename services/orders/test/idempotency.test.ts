import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ordersCollection } from '../src/order.repository';
import {
  addProduct,
  newUser,
  placeOrder,
  stockOf,
  ordersTestScope,
  type RunningOrders,
  type TestUser,
} from './orders.fixture';

describe('POST /v1/orders idempotency (Stripe contract)', () => {
  const scope = ordersTestScope();
  let instances: RunningOrders[] = [];
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    instances = [await scope.start(), await scope.start()];
    [alice, bob] = await Promise.all([newUser(), newUser()]);
  });

  afterAll(async () => {
    await scope.close();
  });

  const first = () => instances[0] as RunningOrders;
  const second = () => instances[1] as RunningOrders;
  const ordersOf = (userId: string) => ordersCollection(first().db).countDocuments({ userId });

  it('the same key and body returns the stored first response, once ordered', async () => {
    const productId = await addProduct(first().db, 10, 1999);
    const key = randomUUID();
    const before = await ordersOf(alice.id);
    const one = await placeOrder(first().url, alice, [{ productId, quantity: 2 }], { key });
    const two = await placeOrder(second().url, alice, [{ productId, quantity: 2 }], { key });
    expect(one.status).toBe(202);
    expect(one.body).toMatchObject({ status: 'PENDING', total: { amount: 3998, currency: 'USD' } });
    expect(two.status).toBe(202);
    expect(two.body).toEqual(one.body);
    expect(one.replayed).toBe(false);
    expect(two.replayed).toBe(true);
    expect(await ordersOf(alice.id)).toBe(before + 1);
    expect((await stockOf(first().db, productId)).stock).toBe(8);
  });

  it('the same key with another body is 422 and changes nothing', async () => {
    const productId = await addProduct(first().db, 10);
    const key = randomUUID();
    const one = await placeOrder(first().url, alice, [{ productId, quantity: 1 }], { key });
    expect(one.status).toBe(202);
    const count = await ordersOf(alice.id);
    const other = await placeOrder(first().url, alice, [{ productId, quantity: 2 }], { key });
    expect(other.status).toBe(422);
    expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await ordersOf(alice.id)).toBe(count);
    expect((await stockOf(first().db, productId)).stock).toBe(9);
  });

  it('50 concurrent identical requests on two instances make exactly one order', async () => {
    const productId = await addProduct(first().db, 100);
    const key = randomUUID();
    const before = await ordersOf(bob.id);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        placeOrder(
          index % 2 === 0 ? first().url : second().url,
          bob,
          [{ productId, quantity: 1 }],
          {
            key,
          },
        ),
      ),
    );
    const accepted = results.filter((result) => result.status === 202);
    const inFlight = results.filter((result) => result.status === 409);
    expect(accepted.length + inFlight.length).toBe(50);
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    for (const result of inFlight) expect(result.body.code).toBe('IDEMPOTENCY_KEY_IN_USE');
    // Every 202 is the same order.
    expect(new Set(accepted.map((result) => result.body.id)).size).toBe(1);
    expect(await ordersOf(bob.id)).toBe(before + 1);
    expect((await stockOf(first().db, productId)).stock).toBe(99);
    // Once finished, a retry gets the stored response.
    const retry = await placeOrder(first().url, bob, [{ productId, quantity: 1 }], { key });
    expect(retry).toMatchObject({
      status: 202,
      replayed: true,
      body: { id: accepted[0]?.body.id },
    });
  });

  it('a key whose request died after storing its order replays that order instead of placing another', async () => {
    const productId = await addProduct(first().db, 10, 500);
    const key = randomUUID();
    const one = await placeOrder(first().url, alice, [{ productId, quantity: 1 }], { key });
    expect(one.status).toBe(202);
    const count = await ordersOf(alice.id);
    // What a process killed right after inserting the order leaves: the key still in flight, long
    // past the in-flight window. The stored order is the completion, so the key is not up for grabs.
    await first()
      .db.collection<{ _id: string; state: string; createdAt: Date; response?: unknown }>(
        'idempotency_keys',
      )
      .updateOne(
        { _id: `${alice.id}:${key}` },
        {
          $set: { state: 'IN_FLIGHT', createdAt: new Date(Date.now() - 3_600_000) },
          $unset: { response: '' },
        },
      );
    const retry = await placeOrder(second().url, alice, [{ productId, quantity: 1 }], { key });
    expect(retry).toMatchObject({ status: 202, replayed: true, body: one.body });
    expect(await ordersOf(alice.id)).toBe(count);
    expect((await stockOf(first().db, productId)).stock).toBe(9);
  });

  it('keys are scoped per user', async () => {
    const productId = await addProduct(first().db, 10);
    const key = randomUUID();
    const mine = await placeOrder(first().url, alice, [{ productId, quantity: 1 }], { key });
    const theirs = await placeOrder(first().url, bob, [{ productId, quantity: 1 }], { key });
    expect(mine.status).toBe(202);
    expect(theirs.status).toBe(202);
    expect(theirs.replayed).toBe(false);
    expect(theirs.body.id).not.toBe(mine.body.id);
  });

  it('a failed placement is not remembered: the same key may try again', async () => {
    const productId = await addProduct(first().db, 1);
    const key = randomUUID();
    const refused = await placeOrder(first().url, alice, [{ productId, quantity: 2 }], { key });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('CONFLICT');
    const retried = await placeOrder(first().url, alice, [{ productId, quantity: 2 }], { key });
    expect(retried.status).toBe(409);
    expect(retried.replayed).toBe(false);
    expect((await stockOf(first().db, productId)).stock).toBe(1);
  });

  it('keeps keys for at least 24 hours', async () => {
    const productId = await addProduct(first().db, 5);
    const key = randomUUID();
    await placeOrder(first().url, alice, [{ productId, quantity: 1 }], { key });
    const stored = await first()
      .db.collection<{ _id: string; createdAt: Date; expiresAt: Date }>('idempotency_keys')
      .findOne({ _id: `${alice.id}:${key}` });
    expect(stored).not.toBeNull();
    if (stored === null) return;
    expect(stored.expiresAt.getTime() - stored.createdAt.getTime()).toBeGreaterThanOrEqual(
      24 * 3_600_000,
    );
  });
});
