import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addProduct,
  newUser,
  placeOrder,
  stockOf,
  ordersTestScope,
  type RunningOrders,
  type TestUser,
} from './orders.fixture';

// Two orders instances on one FerretDB database, as `npm run scale -- orders=2` runs them: concurrent
// buyers of the last units must never be sold more than there is.
describe('stock reservation under concurrency (FerretDB, two instances)', () => {
  const scope = ordersTestScope();
  let instances: RunningOrders[] = [];
  let buyers: TestUser[] = [];

  beforeAll(async () => {
    instances = [await scope.start(), await scope.start()];
    buyers = await Promise.all(Array.from({ length: 8 }, () => newUser()));
  });

  afterAll(async () => {
    await scope.close();
  });

  it('many concurrent buyers of the last units never oversell; stock and reservations add up', async () => {
    const [first, second] = instances;
    if (first === undefined || second === undefined) throw new Error('instances not started');
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 20, maxLength: 60 }),
        async (units, quantities) => {
          const productId = await addProduct(first.db, units);
          const results = await Promise.all(
            quantities.map((quantity, index) =>
              placeOrder(
                index % 2 === 0 ? first.url : second.url,
                buyers[index % buyers.length] as TestUser,
                [{ productId, quantity }],
              ).then((result) => ({ quantity, result })),
            ),
          );
          for (const { result } of results) {
            // Every buyer is either accepted or told the stock ran out; nothing else.
            expect([202, 409]).toContain(result.status);
            if (result.status === 409) expect(result.body.code).toBe('CONFLICT');
          }
          const sold = results
            .filter(({ result }) => result.status === 202)
            .reduce((sum, { quantity }) => sum + quantity, 0);
          const { stock, reserved } = await stockOf(first.db, productId);
          expect(sold).toBeLessThanOrEqual(units);
          expect(stock).toBeGreaterThanOrEqual(0);
          expect(stock).toBe(units - sold);
          expect(reserved).toBe(sold);
          // Whoever was refused could not have fitted: the stock left is smaller than every refused
          // quantity (orders are not refused while units remain for them).
          const refused = results.filter(({ result }) => result.status === 409);
          for (const { quantity } of refused) expect(quantity).toBeGreaterThan(stock);
        },
      ),
      { numRuns: 6 },
    );
  });
});
