import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyStockOperations, type StockOperation, type StockState } from './stock';

const at = new Date('2026-01-01T00:00:00Z');

describe('applyStockOperations', () => {
  it('reserves while stock lasts and refuses the rest', () => {
    const result = applyStockOperations(
      { stock: 3, reservations: {} },
      [
        { kind: 'reserve', orderId: 'ord_a', quantity: 2 },
        { kind: 'reserve', orderId: 'ord_b', quantity: 2 },
        { kind: 'reserve', orderId: 'ord_c', quantity: 1 },
      ],
      at,
    );
    expect(result.outcomes).toEqual(['reserved', 'insufficient', 'reserved']);
    expect(result.state.stock).toBe(0);
    expect(Object.keys(result.set).sort()).toEqual(['ord_a', 'ord_c']);
  });

  it('releases once and settles without returning units', () => {
    const initial: StockState = {
      stock: 0,
      reservations: { ord_a: { quantity: 2, at }, ord_b: { quantity: 1, at } },
    };
    const result = applyStockOperations(
      initial,
      [
        { kind: 'release', orderId: 'ord_a' },
        { kind: 'release', orderId: 'ord_a' },
        { kind: 'settle', orderId: 'ord_b' },
      ],
      at,
    );
    expect(result.outcomes).toEqual(['released', 'absent', 'settled']);
    expect(result.state.stock).toBe(2);
    expect(result.unset.sort()).toEqual(['ord_a', 'ord_b']);
  });

  it('a retried reservation reserves once', () => {
    const result = applyStockOperations(
      { stock: 5, reservations: {} },
      [
        { kind: 'reserve', orderId: 'ord_a', quantity: 2 },
        { kind: 'reserve', orderId: 'ord_a', quantity: 2 },
      ],
      at,
    );
    expect(result.outcomes).toEqual(['reserved', 'reserved']);
    expect(result.state.stock).toBe(3);
  });

  const operation: fc.Arbitrary<StockOperation> = fc.oneof(
    fc.record({
      kind: fc.constant('reserve' as const),
      orderId: fc.constantFrom('ord_a', 'ord_b', 'ord_c', 'ord_d'),
      quantity: fc.integer({ min: 1, max: 5 }),
    }),
    fc.record({
      kind: fc.constant('reinstate' as const),
      orderId: fc.constantFrom('ord_a', 'ord_b', 'ord_c', 'ord_d'),
      quantity: fc.integer({ min: 1, max: 5 }),
    }),
    fc.record({
      kind: fc.constantFrom('release' as const, 'settle' as const),
      orderId: fc.constantFrom('ord_a', 'ord_b', 'ord_c', 'ord_d'),
    }),
  );

  it('never goes negative, conserves stock + reserved + sold, batches like one-by-one, writes exactly the difference', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10 }),
        fc.array(fc.array(operation, { maxLength: 10 }), { maxLength: 10 }),
        (initialStock, batches) => {
          let state: StockState = { stock: initialStock, reservations: {} };
          let settled = 0;
          for (const batch of batches) {
            const before = state;
            const result = applyStockOperations(state, batch, at);
            // One operation at a time gives the same outcomes and the same state.
            let single = before;
            batch.forEach((op, index) => {
              const step = applyStockOperations(single, [op], at);
              expect(step.outcomes[0]).toBe(result.outcomes[index]);
              if (step.outcomes[0] === 'settled') {
                settled += single.reservations[op.orderId]?.quantity ?? Number.NaN;
              }
              if (step.outcomes[0] === 'reinstated' && op.kind === 'reinstate') {
                settled -= op.quantity;
              }
              single = step.state;
            });
            expect(single).toEqual(result.state);
            // Replaying the written difference on the old state gives the new state.
            const replayed = { ...before.reservations, ...result.set };
            for (const id of result.unset) delete replayed[id];
            expect(replayed).toEqual(result.state.reservations);
            state = result.state;
            expect(state.stock).toBeGreaterThanOrEqual(0);
          }
          const reserved = Object.values(state.reservations).reduce(
            (sum, r) => sum + r.quantity,
            0,
          );
          expect(state.stock + reserved + settled).toBe(initialStock);
        },
      ),
    );
  });
});
