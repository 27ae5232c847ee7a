import type { Collection, Db, Filter } from 'mongodb';
import type { BusEvent, MongoOutboxEntry } from '@bazaar/event-bus';
import { outboxEntries } from '@bazaar/event-bus';
import type { CancelReason, Money, Order, OrderLine, OrderStatus } from './order';
import { createWriteLocks, type LockDocument } from './write-lock';
import { batchedInsert } from './command-batch';

/** An order as stored (`orders` collection), with its embedded outbox. */
export interface OrderDocument {
  _id: string;
  userId: string;
  status: OrderStatus;
  items: OrderLine[];
  total: Money;
  placedAt: Date;
  deadline: Date;
  updatedAt: Date;
  paymentId?: string;
  cancelReason?: CancelReason;
  confirmedAt?: Date;
  cancelledAt?: Date;
  outbox?: MongoOutboxEntry[];
}

export interface OrderRepository {
  /** Inserts a new order with its events in the same document; returns the outbox entries written. */
  insert(order: Order, events: readonly BusEvent[]): Promise<MongoOutboxEntry[]>;
  find(id: string): Promise<Order | undefined>;
  findMany(ids: readonly string[]): Promise<Order[]>;
  listByUser(userId: string, limit: number, before: string | undefined): Promise<Order[]>;
  /** PENDING orders whose deadline passed. */
  findExpired(now: Date, limit: number): Promise<string[]>;
  /**
   * Writes a transition and its events in one update. Call it inside {@link withLock}: the lock is
   * what makes "only from `from`" hold on FerretDB.
   */
  saveTransition(
    from: OrderStatus,
    next: Order,
    events: readonly BusEvent[],
    options?: { replacesOutbox?: boolean },
  ): Promise<MongoOutboxEntry[] | undefined>;
  /** Runs `work` while holding the order's write lock (shared with the outbox relay's claims). */
  withLock<T>(orderId: string, work: () => Promise<T>): Promise<T>;
  /** The relay of this process dropped its leases on these orders: their waiters try again now. */
  leasesReleased(orderIds: readonly unknown[]): void;
}

function toOrder(doc: OrderDocument): Order {
  return {
    id: doc._id,
    userId: doc.userId,
    status: doc.status,
    items: doc.items,
    total: doc.total,
    placedAt: doc.placedAt,
    deadline: doc.deadline,
    updatedAt: doc.updatedAt,
    ...(doc.paymentId === undefined ? {} : { paymentId: doc.paymentId }),
    ...(doc.cancelReason === undefined ? {} : { cancelReason: doc.cancelReason }),
    ...(doc.confirmedAt === undefined ? {} : { confirmedAt: doc.confirmedAt }),
    ...(doc.cancelledAt === undefined ? {} : { cancelledAt: doc.cancelledAt }),
  };
}

function toDocumentFields(order: Order): Omit<OrderDocument, '_id' | 'outbox'> {
  const fields: Record<string, unknown> = { ...order };
  delete fields.id;
  return fields as unknown as Omit<OrderDocument, '_id' | 'outbox'>;
}

/** The fields a transition may change; the rest of an order is fixed when it is placed. */
function transitionFields(order: Order): Partial<OrderDocument> {
  return {
    status: order.status,
    updatedAt: order.updatedAt,
    ...(order.paymentId === undefined ? {} : { paymentId: order.paymentId }),
    ...(order.cancelReason === undefined ? {} : { cancelReason: order.cancelReason }),
    ...(order.confirmedAt === undefined ? {} : { confirmedAt: order.confirmedAt }),
    ...(order.cancelledAt === undefined ? {} : { cancelledAt: order.cancelledAt }),
  };
}

const WITHOUT_OUTBOX = { outbox: 0 } as const;

export function ordersCollection(db: Db): Collection<OrderDocument> {
  return db.collection<OrderDocument>('orders');
}

export interface OrderRepositoryOptions {
  readonly db: Db;
  readonly owner: string;
  readonly lockLeaseMs: number;
  readonly lockWaitMs: number;
}

/** The collection whose documents lock orders: the Mongo outbox relay's lease collection. */
export function orderLeaseCollectionName(): string {
  return 'orders_outbox_leases';
}

export function createOrderRepository(options: OrderRepositoryOptions): OrderRepository {
  const { db } = options;
  const orders = ordersCollection(db);
  // The relay claims an order's outbox by inserting `{ _id: orderId }` into this same collection, so
  // one lock keeps a transition and the relay's removal of published entries from overwriting each
  // other (FerretDB rewrites the whole document on every update).
  const locks = createWriteLocks({
    collection: db.collection<LockDocument>(orderLeaseCollectionName()),
    owner: `${options.owner}:transition`,
    leaseMs: options.lockLeaseMs,
    waitMs: options.lockWaitMs,
    what: 'order',
  });
  // Orders placed at the same moment are stored by one command (command-batch.ts).
  const insertOrder = batchedInsert(orders, { isSame: () => true });

  return {
    async insert(order, events) {
      const outbox = outboxEntries(events);
      // Order ids are random and new: an existing one can only be this very order, stored before a
      // failure that the batch then found written (`isSame`), never another order.
      if (!(await insertOrder({ _id: order.id, ...toDocumentFields(order), outbox }))) {
        throw new Error(`order ${order.id} exists already`);
      }
      return outbox;
    },
    async find(id) {
      const doc = await orders.findOne({ _id: id }, { projection: WITHOUT_OUTBOX });
      return doc === null ? undefined : toOrder(doc);
    },
    async findMany(ids) {
      if (ids.length === 0) return [];
      const docs = await orders
        .find({ _id: { $in: [...ids] } }, { projection: WITHOUT_OUTBOX })
        .toArray();
      return docs.map(toOrder);
    },
    async listByUser(userId, limit, before) {
      const filter: Filter<OrderDocument> =
        before === undefined ? { userId } : { userId, _id: { $lt: before } };
      const docs = await orders
        .find(filter, { projection: WITHOUT_OUTBOX, sort: { _id: -1 }, limit })
        .toArray();
      return docs.map(toOrder);
    },
    async findExpired(now, limit) {
      const docs = await orders
        .find(
          { status: 'PENDING', deadline: { $lte: now } },
          { projection: { _id: 1 }, sort: { deadline: 1 }, limit },
        )
        .toArray();
      return docs.map((doc) => doc._id);
    },
    async saveTransition(from, next, events, options) {
      // Replacing the outbox is for a caller that knows it holds only published entries (see
      // order.service.ts): the write that changes the order then also removes them.
      const entries = outboxEntries(events);
      const result = await orders.updateOne(
        { _id: next.id, status: from },
        options?.replacesOutbox === true
          ? { $set: { ...transitionFields(next), outbox: entries } }
          : { $set: transitionFields(next), $push: { outbox: { $each: entries } } },
      );
      return result.modifiedCount === 1 ? entries : undefined;
    },
    withLock: (orderId, work) => locks.withLock(orderId, work),
    leasesReleased: (orderIds) => locks.released(orderIds),
  };
}

export async function ensureOrderIndexes(db: Db): Promise<void> {
  const orders = ordersCollection(db);
  await orders.createIndex({ userId: 1, _id: -1 }, { name: 'orders_by_user' });
  await orders.createIndex({ status: 1, deadline: 1 }, { name: 'orders_pending_deadline' });
}
