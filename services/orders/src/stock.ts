// Stock of one product and its open reservations, and how a batch of operations changes them.
// Pure: the repository runs a batch while it holds the product's write lock and writes the result in one
// update. Reservations are keyed by order id, which makes every operation idempotent: a retried
// reservation reserves once, a second release releases nothing.

export interface Reservation {
  readonly quantity: number;
  readonly at: Date;
}

export interface StockState {
  readonly stock: number;
  readonly reservations: Readonly<Record<string, Reservation>>;
}

/**
 * `reserve` takes units out of stock for an order; `release` puts an order's reserved units back
 * (cancelled); `settle` forgets a reservation whose units were sold (confirmed); `reinstate` turns
 * sold units of a confirmed order back into a reservation, so that cancelling it releases them
 * through the same idempotent path.
 */
export type StockOperation =
  | { readonly kind: 'reserve'; readonly orderId: string; readonly quantity: number }
  | { readonly kind: 'reinstate'; readonly orderId: string; readonly quantity: number }
  | { readonly kind: 'release'; readonly orderId: string }
  | { readonly kind: 'settle'; readonly orderId: string };

export type StockOutcome =
  'reserved' | 'insufficient' | 'reinstated' | 'released' | 'settled' | 'absent';

export interface StockBatchResult {
  readonly state: StockState;
  readonly outcomes: StockOutcome[];
  /** Reservations to write (`reservations.<orderId>`). */
  readonly set: Record<string, Reservation>;
  /** Reservations to remove. */
  readonly unset: string[];
}

/** Applies the operations in order. Stock never goes below zero. */
export function applyStockOperations(
  initial: StockState,
  operations: readonly StockOperation[],
  at: Date,
): StockBatchResult {
  let stock = initial.stock;
  const reservations = new Map(Object.entries(initial.reservations));
  const outcomes = operations.map((operation): StockOutcome => {
    const existing = reservations.get(operation.orderId);
    switch (operation.kind) {
      case 'reserve': {
        if (existing !== undefined) return 'reserved';
        if (!(operation.quantity > 0) || stock < operation.quantity) return 'insufficient';
        stock -= operation.quantity;
        const reservation = { quantity: operation.quantity, at };
        reservations.set(operation.orderId, reservation);
        return 'reserved';
      }
      case 'reinstate': {
        if (existing !== undefined) return 'reserved';
        if (!(operation.quantity > 0)) return 'absent';
        reservations.set(operation.orderId, { quantity: operation.quantity, at });
        return 'reinstated';
      }
      case 'release':
      case 'settle': {
        if (existing === undefined) return 'absent';
        if (operation.kind === 'release') stock += existing.quantity;
        reservations.delete(operation.orderId);
        return operation.kind === 'release' ? 'released' : 'settled';
      }
    }
  });
  // The write is the difference between the initial and the final reservations.
  const set: Record<string, Reservation> = {};
  for (const [orderId, reservation] of reservations) {
    if (initial.reservations[orderId] !== reservation) set[orderId] = reservation;
  }
  const unset = Object.keys(initial.reservations).filter((orderId) => !reservations.has(orderId));
  return {
    state: { stock, reservations: Object.fromEntries(reservations) },
    outcomes,
    set,
    unset,
  };
}
