import { createEvent, type EventTypes } from '@bazaar/contracts';
import type { BusEvent, MongoOutboxEntry } from '@bazaar/event-bus';
import type { FieldIssue } from '@bazaar/errors';
import type { Logger } from '@bazaar/logging';
import type { OrderMetrics } from '@bazaar/telemetry';
import {
  idempotencyKeyInUse,
  idempotencyKeyReused,
  orderNotFound,
  outOfStock,
  unprocessableOrder,
} from './errors';
import { requestFingerprint } from './idempotency';
import type { IdempotencyKeyRepository, StoredResponse } from './idempotency-key.repository';
import {
  decide,
  newId,
  priceOrder,
  type Money,
  type Order,
  type OrderCommand,
  type RequestedLine,
} from './order';
import type { OrderRepository } from './order.repository';
import type { ProductRepository } from './product.repository';
import type { StockOutcome } from './stock';

export interface PlaceOrderRequest {
  readonly items: readonly RequestedLine[];
  readonly payment: { readonly token: string };
}

export interface PlacedOrder {
  readonly id: string;
  readonly status: 'PENDING';
  readonly total: Money;
}

export type TransitionResult = 'applied' | 'ignored' | 'missing';

export interface OrderService {
  /** Places an order under an idempotency key; a replay returns the first response. */
  place(
    userId: string,
    key: string,
    request: PlaceOrderRequest,
  ): Promise<{ response: StoredResponse; replayed: boolean }>;
  get(userId: string, orderId: string): Promise<Order>;
  list(userId: string, limit: number, before: string | undefined): Promise<Order[]>;
  cancel(userId: string, orderId: string): Promise<Order>;
  /** Applies a saga command (payment outcome, deadline) to an order. */
  transition(orderId: string, command: OrderCommand): Promise<TransitionResult>;
  /** Cancels the PENDING orders past their deadline; returns how many were cancelled. */
  expireDue(limit: number): Promise<number>;
  /** Resolves reservations older than the grace period by their order's state; drops expired keys. */
  tidy(): Promise<{ released: number; settled: number; keysDeleted: number }>;
}

export interface OrderServiceDeps {
  readonly orders: OrderRepository;
  readonly products: ProductRepository;
  readonly keys: IdempotencyKeyRepository;
  readonly logger: Logger;
  readonly paymentDeadlineMs: number;
  readonly reservationGraceMs: number;
  /** Called after events were written to an order, so the relay publishes them without searching. */
  readonly onEventsWritten?: (orderId: string, entries: readonly MongoOutboxEntry[]) => void;
  /**
   * The relay's published-but-not-yet-removed entries of an order (taken: the caller removes them in
   * its write), and how to give them back when that write did not happen.
   */
  readonly publishedEntries?: {
    take(orderId: string): readonly MongoOutboxEntry[] | undefined;
    restore(orderId: string, entries: readonly MongoOutboxEntry[]): void;
  };
  /** Business counters (`orders_placed_total`, saga outcomes, revenue). */
  readonly metrics?: OrderMetrics;
  readonly now?: () => Date;
}

function pricingIssues(problems: ReturnType<typeof priceOrder> & { ok: false }): FieldIssue[] {
  return problems.problems.map((problem): FieldIssue => {
    switch (problem.kind) {
      case 'unknown_product':
        return {
          path: `/body/items/${problem.index}/productId`,
          message: `product ${problem.productId} does not exist`,
        };
      case 'duplicate_product':
        return {
          path: `/body/items/${problem.index}/productId`,
          message: `product ${problem.productId} appears more than once`,
        };
      case 'mixed_currencies':
        return { path: '/body/items', message: 'products are priced in different currencies' };
      case 'total_too_large':
        return { path: '/body/items', message: 'the total is too large' };
    }
  });
}

function eventsFor(order: Order, effect: 'confirmed' | 'cancelled'): BusEvent[] {
  const at = (effect === 'confirmed' ? order.confirmedAt : order.cancelledAt) ?? order.updatedAt;
  if (effect === 'confirmed') {
    if (order.paymentId === undefined)
      throw new Error(`confirmed order ${order.id} has no payment`);
    return [
      createEvent('order.confirmed.v1', {
        source: '/orders',
        subject: order.id,
        time: at,
        data: {
          orderId: order.id,
          userId: order.userId,
          paymentId: order.paymentId,
          total: order.total,
          confirmedAt: at.toISOString(),
        },
      }),
    ];
  }
  const data: EventTypes['order.cancelled.v1']['data'] = {
    orderId: order.id,
    userId: order.userId,
    reason: order.cancelReason ?? 'USER_CANCELLED',
    ...(order.paymentId === undefined ? {} : { paymentId: order.paymentId }),
    releasedItems: order.items.map((item) => ({
      productId: item.productId,
      quantity: item.quantity,
    })),
    total: order.total,
    cancelledAt: at.toISOString(),
  };
  return [
    createEvent('order.cancelled.v1', { source: '/orders', subject: order.id, time: at, data }),
  ];
}

/** PENDING orders of this process remembered for their transition (about 1 KB each). */
const MAX_REMEMBERED_PENDING = 20_000;

/** The 202 body of a placement: the same for the first response and every replay. */
function placedResponse(order: Order): PlacedOrder {
  return { id: order.id, status: 'PENDING', total: order.total };
}

export function createOrderService(deps: OrderServiceDeps): OrderService {
  const { orders, products, keys, logger, now = () => new Date() } = deps;
  const wake = deps.onEventsWritten ?? (() => undefined);

  async function releaseAll(orderId: string, productIds: readonly string[]): Promise<void> {
    await Promise.all(
      productIds.map((productId) => products.changeStock(productId, { kind: 'release', orderId })),
    );
  }

  async function placeNew(
    userId: string,
    orderId: string,
    placedAt: Date,
    request: PlaceOrderRequest,
  ): Promise<PlacedOrder> {
    // Prices may be up to the cache's TTL old; stock is never taken from it (reservations read it
    // under the product's lock).
    const catalog = await products.findForPricing(request.items.map((item) => item.productId));
    const priced = priceOrder(
      request.items,
      new Map(catalog.map((product) => [product.id, product])),
    );
    if (!priced.ok) throw unprocessableOrder(pricingIssues(priced));

    const outcomes = await Promise.allSettled(
      priced.items.map((item) =>
        products.changeStock(item.productId, {
          kind: 'reserve',
          orderId,
          quantity: item.quantity,
        }),
      ),
    );
    const reserved = priced.items.filter(
      (_, index) => outcomes[index]?.status === 'fulfilled' && outcomes[index].value === 'reserved',
    );
    if (reserved.length < priced.items.length) {
      await releaseAll(
        orderId,
        reserved.map((item) => item.productId),
      );
      const failure = outcomes.find(
        (outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected',
      );
      if (failure !== undefined) throw failure.reason;
      throw outOfStock(
        priced.items
          .filter((_, index) => {
            const outcome = outcomes[index];
            return outcome?.status === 'fulfilled' && outcome.value === 'insufficient';
          })
          .map((item) => item.productId),
      );
    }

    const order: Order = {
      id: orderId,
      userId,
      status: 'PENDING',
      items: priced.items,
      total: priced.total,
      placedAt,
      deadline: new Date(placedAt.getTime() + deps.paymentDeadlineMs),
      updatedAt: placedAt,
    };
    const placed = createEvent('order.placed.v1', {
      source: '/orders',
      subject: orderId,
      time: placedAt,
      data: {
        orderId,
        userId,
        items: order.items.map((item) => ({ ...item, unitPrice: { ...item.unitPrice } })),
        total: order.total,
        paymentToken: request.payment.token,
        placedAt: placedAt.toISOString(),
        deadline: order.deadline.toISOString(),
      },
    });
    let written: MongoOutboxEntry[];
    try {
      written = await orders.insert(order, [placed]);
    } catch (error) {
      // Nothing was acknowledged: give the units back (the janitor would, later).
      await releaseAll(
        orderId,
        order.items.map((item) => item.productId),
      ).catch((releaseError: unknown) =>
        logger.warn({ err: releaseError, orderId }, 'could not release stock; the janitor will'),
      );
      throw error;
    }
    rememberPending(order);
    wake(orderId, written);
    return placedResponse(order);
  }

  // Everything about one order — its transition and the stock it holds — happens under the order's
  // lock, so the janitor or a second instance never interleaves with it. Stock operations are keyed
  // by order id and idempotent; after a crash between the steps, the janitor finishes the job from
  // the order's state.
  // PENDING orders placed by this process, as stored. A transition of one of them needs no read: its
  // update is guarded by `status: PENDING` under the order's lock, which makes it a compare-and-set of
  // everything a transition may change (each status is entered once, with its fields); if another
  // instance moved the order on, the guard fails and the order is read. Only PENDING is served from
  // here because no stock operation precedes the guarded update when leaving PENDING.
  const pendingPlaced = new Map<string, Order>();

  function rememberPending(order: Order): void {
    if (pendingPlaced.size >= MAX_REMEMBERED_PENDING) {
      const oldest = pendingPlaced.keys().next();
      if (oldest.done !== true) pendingPlaced.delete(oldest.value);
    }
    pendingPlaced.set(order.id, order);
  }

  async function transition(orderId: string, command: OrderCommand): Promise<TransitionResult> {
    let written: MongoOutboxEntry[] | undefined;
    const result = await orders.withLock(orderId, async (): Promise<TransitionResult> => {
      const remembered = pendingPlaced.get(orderId);
      const rememberedDecision = remembered === undefined ? undefined : decide(remembered, command);
      if (rememberedDecision?.kind === 'apply') {
        const { next, effect } = rememberedDecision;
        pendingPlaced.delete(orderId);
        // A PENDING order placed here holds only its order.placed in the outbox; once the relay has
        // published it, this write replaces it (one write instead of the relay's removal and this one).
        const published = deps.publishedEntries?.take(orderId);
        try {
          written = await orders.saveTransition('PENDING', next, eventsFor(next, effect), {
            replacesOutbox: published !== undefined,
          });
        } finally {
          if (written === undefined && published !== undefined) {
            deps.publishedEntries?.restore(orderId, published);
          }
        }
        if (written !== undefined) {
          await finish(next, effect);
          return 'applied';
        }
        // Moved on elsewhere (another instance): decide on the stored order.
      }
      const order = await orders.find(orderId);
      if (order === undefined) return 'missing';
      const decision = decide(order, command);
      if (decision.kind === 'ignore') {
        logger.debug({ orderId, command: command.type, why: decision.why }, 'transition ignored');
        return 'ignored';
      }
      const { next, effect } = decision;
      if (effect === 'cancelled' && order.status === 'CONFIRMED') {
        await changeLines(next, 'reinstate');
      }
      written = await orders.saveTransition(order.status, next, eventsFor(next, effect));
      if (written === undefined) throw new Error(`order ${orderId} changed under its lock`);
      await finish(next, effect);
      return 'applied';
    });
    if (result === 'applied' && written !== undefined) wake(orderId, written);
    return result;
  }

  /** The stock and metrics of a transition whose new state is stored. */
  async function finish(next: Order, effect: 'confirmed' | 'cancelled'): Promise<void> {
    await changeLines(next, effect === 'cancelled' ? 'release' : 'settle');
    if (effect === 'cancelled') {
      deps.metrics?.cancelled(next.cancelReason ?? 'USER_CANCELLED', next.placedAt);
    } else {
      deps.metrics?.confirmed(next.total, next.placedAt);
    }
  }

  async function changeLines(
    order: Order,
    kind: 'reinstate' | 'release' | 'settle',
  ): Promise<void> {
    await Promise.all(
      order.items.map((item) =>
        products.changeStock(
          item.productId,
          kind === 'reinstate'
            ? { kind, orderId: order.id, quantity: item.quantity }
            : { kind, orderId: order.id },
        ),
      ),
    );
  }

  /** Finishes what a crash interrupted: a reservation whose order is no longer PENDING. */
  async function resolveReservation(productId: string, orderId: string): Promise<StockOutcome> {
    return orders.withLock(orderId, async () => {
      const order = await orders.find(orderId);
      if (order?.status === 'PENDING') return 'absent';
      // No order: its placement died between reserving and storing it. Cancelled: the release
      // after the transition did not happen. Confirmed: the units are sold.
      const kind = order?.status === 'CONFIRMED' ? 'settle' : 'release';
      return products.changeStock(productId, { kind, orderId });
    });
  }

  return {
    async place(userId, key, request) {
      const placedAt = now();
      const orderId = newId('ord', placedAt);
      const claim = await keys.claim({
        userId,
        key,
        fingerprint: requestFingerprint(request),
        orderId,
        now: placedAt,
        responseOf: async (claimedOrderId) => {
          const order = await orders.find(claimedOrderId);
          return order === undefined ? undefined : { status: 202, body: placedResponse(order) };
        },
      });
      switch (claim.kind) {
        case 'replay':
          return { response: claim.response, replayed: true };
        case 'mismatch':
          throw idempotencyKeyReused();
        case 'in_flight':
          throw idempotencyKeyInUse();
        case 'claimed':
          break;
      }
      let placed: PlacedOrder;
      try {
        placed = await placeNew(userId, orderId, placedAt, request);
      } catch (error) {
        // Only a completed placement is remembered: after a failure the same key may try again.
        await keys
          .release(userId, key, claim.token)
          .catch((releaseError: unknown) =>
            logger.warn({ err: releaseError }, 'could not release an idempotency key'),
          );
        throw error;
      }
      deps.metrics?.placed();
      // The stored order completes the key: a replay rebuilds this response from it.
      return { response: { status: 202, body: placed }, replayed: false };
    },
    async get(userId, orderId) {
      const order = await orders.find(orderId);
      // Someone else's order is "not found": its existence is not revealed.
      if (order === undefined || order.userId !== userId) throw orderNotFound();
      return order;
    },
    list: (userId, limit, before) => orders.listByUser(userId, limit, before),
    async cancel(userId, orderId) {
      const order = await orders.find(orderId);
      if (order === undefined || order.userId !== userId) throw orderNotFound();
      await transition(orderId, { type: 'cancel', at: now() });
      const after = await orders.find(orderId);
      if (after === undefined) throw orderNotFound();
      return after;
    },
    transition,
    async expireDue(limit) {
      const due = await orders.findExpired(now(), limit);
      let cancelled = 0;
      for (const orderId of due) {
        if ((await transition(orderId, { type: 'expire', at: now() })) === 'applied')
          cancelled += 1;
      }
      return cancelled;
    },
    async tidy() {
      const at = now();
      const stale = await products.staleReservations(
        new Date(at.getTime() - deps.reservationGraceMs),
      );
      let released = 0;
      let settled = 0;
      for (const { productId, orderId } of stale) {
        const outcome = await resolveReservation(productId, orderId);
        if (outcome === 'released') released += 1;
        if (outcome === 'settled') settled += 1;
      }
      const keysDeleted = await keys.deleteExpired(at);
      return { released, settled, keysDeleted };
    },
  };
}
