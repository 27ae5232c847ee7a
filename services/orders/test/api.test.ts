import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productsCollection } from '../src/product.repository';
import {
  addProduct,
  getOrder,
  newUser,
  placeOrder,
  stockOf,
  ordersTestScope,
  type RunningOrders,
  type TestUser,
} from './orders.fixture';

describe('orders HTTP API', () => {
  const scope = ordersTestScope();
  let orders: RunningOrders;
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    orders = await scope.start({ CATALOG_SEED: 'true' });
    [alice, bob] = await Promise.all([newUser(), newUser()]);
  });

  afterAll(async () => {
    await scope.close();
  });

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${orders.url}/v1/orders`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${alice.token}`,
        'content-type': 'application/json',
        'idempotency-key': randomUUID(),
        ...headers,
      },
      body: JSON.stringify(body),
    });

  it('seeds a realistic catalog on first start, listed in cursor pages without repeats', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const response = await fetch(`${orders.url}/v1/products?limit=7${query}`);
      expect(response.status).toBe(200);
      const page = (await response.json()) as {
        items: {
          id: string;
          name: string;
          price: { amount: number; currency: string };
          stock: number;
        }[];
        nextCursor: string | null;
      };
      expect(page.items.length).toBeLessThanOrEqual(7);
      for (const item of page.items) {
        expect(Number.isInteger(item.price.amount)).toBe(true);
        expect(item.price.currency).toBe('USD');
        expect(item.stock).toBeGreaterThan(0);
      }
      seen.push(...page.items.map((item) => item.id));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(seen.length).toBe(await productsCollection(orders.db).countDocuments());
    expect(seen.length).toBeGreaterThanOrEqual(20);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual(seen);
  });

  it('reads one product; an unknown one is 404 problem+json', async () => {
    const productId = await addProduct(orders.db, 3, 4200);
    const response = await fetch(`${orders.url}/v1/products/${productId}`);
    expect(await response.json()).toMatchObject({
      id: productId,
      price: { amount: 4200 },
      stock: 3,
    });
    const missing = await fetch(`${orders.url}/v1/products/prd_DOESNOTEXIST`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
    const bad = await fetch(
      `${orders.url}/v1/products?cursor=${Buffer.from('x').toString('base64url')}`,
    );
    expect(bad.status).toBe(400);
  });

  it('refuses bad requests with a problem naming the field, and changes nothing', async () => {
    const productId = await addProduct(orders.db, 5);
    const good = { items: [{ productId, quantity: 1 }], payment: { token: 'tok_visa' } };
    const noKey = await fetch(`${orders.url}/v1/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(good),
    });
    expect(noKey.status).toBe(400);
    expect(await noKey.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ path: 'headers.idempotency-key' }],
    });
    const cases: [unknown, number, string][] = [
      [{ ...good, items: [] }, 400, 'VALIDATION_FAILED'],
      [{ ...good, items: [{ productId, quantity: 0 }] }, 400, 'VALIDATION_FAILED'],
      [{ ...good, payment: { token: 'tok_4242424242424242' } }, 400, 'VALIDATION_FAILED'],
      [{ ...good, total: { amount: 1, currency: 'USD' } }, 400, 'VALIDATION_FAILED'],
      [{ ...good, items: [{ productId: 'prd_NOPE', quantity: 1 }] }, 422, 'UNPROCESSABLE'],
      [{ ...good, items: [{ productId, quantity: 6 }] }, 409, 'CONFLICT'],
    ];
    for (const [body, status, code] of cases) {
      const response = await post(body);
      expect(response.status, JSON.stringify(body)).toBe(status);
      expect(((await response.json()) as { code: string }).code).toBe(code);
    }
    const anonymous = await fetch(`${orders.url}/v1/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
      body: JSON.stringify(good),
    });
    expect(anonymous.status).toBe(401);
    expect(await stockOf(orders.db, productId)).toEqual({ stock: 5, reserved: 0 });
  });

  it('prices from the catalog and shows orders to their owner only (others get 404)', async () => {
    const productId = await addProduct(orders.db, 5, 1234);
    const placed = await placeOrder(orders.url, alice, [{ productId, quantity: 3 }]);
    expect(placed.body.total).toEqual({ amount: 3702, currency: 'USD' });
    const id = placed.body.id as string;
    const mine = await getOrder(orders.url, alice, id);
    expect(mine.status).toBe(200);
    expect(mine.body).toMatchObject({ id, status: 'PENDING', items: [{ productId, quantity: 3 }] });
    expect((await getOrder(orders.url, bob, id)).status).toBe(404);
    const bobsList = await fetch(`${orders.url}/v1/orders`, {
      headers: { authorization: `Bearer ${bob.token}` },
    });
    expect(
      ((await bobsList.json()) as { items: { id: string }[] }).items.map((o) => o.id),
    ).not.toContain(id);
  });

  it('lists my orders newest first in cursor pages', async () => {
    const carol = await newUser();
    const productId = await addProduct(orders.db, 50);
    const ids: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      ids.push(
        (await placeOrder(orders.url, carol, [{ productId, quantity: 1 }])).body.id as string,
      );
    }
    const listed: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const response = await fetch(`${orders.url}/v1/orders?limit=2${query}`, {
        headers: { authorization: `Bearer ${carol.token}` },
      });
      const page = (await response.json()) as {
        items: { id: string }[];
        nextCursor: string | null;
      };
      listed.push(...page.items.map((order) => order.id));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(listed).toEqual([...ids].reverse());
  });
});

describe('prices of new orders come from a short-lived cache of the catalog', () => {
  const scope = ordersTestScope();
  let orders: RunningOrders;
  let alice: TestUser;
  const ttlMs = 1_500;

  beforeAll(async () => {
    orders = await scope.start({ CATALOG_CACHE_TTL_MS: String(ttlMs) });
    alice = await newUser();
  });

  afterAll(async () => {
    await scope.close();
  });

  it('a price change applies to orders placed once the TTL has passed, never to stock', async () => {
    const productId = await addProduct(orders.db, 10, 1000);
    // The cached price expires a TTL after the first order priced it, i.e. after this moment.
    const pricedFrom = Date.now();
    const first = await placeOrder(orders.url, alice, [{ productId, quantity: 1 }]);
    expect(first.body.total).toEqual({ amount: 1000, currency: 'USD' });
    await productsCollection(orders.db).updateOne(
      { _id: productId },
      { $set: { price: { amount: 2500, currency: 'USD' } } },
    );
    const cached = await placeOrder(orders.url, alice, [{ productId, quantity: 1 }]);
    // Within the TTL the cached price may still be used (this request comes right after the change).
    if (Date.now() - pricedFrom < ttlMs) {
      expect(cached.body.total).toEqual({ amount: 1000, currency: 'USD' });
    }
    await new Promise((resolve) => setTimeout(resolve, ttlMs + 100));
    const fresh = await placeOrder(orders.url, alice, [{ productId, quantity: 1 }]);
    expect(fresh.body.total).toEqual({ amount: 2500, currency: 'USD' });
    // Stock is never taken from the cache: three units reserved from the stored stock.
    expect(await stockOf(orders.db, productId)).toEqual({ stock: 7, reserved: 3 });
  });
});
