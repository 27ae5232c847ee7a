import type { Collection, Db, Document, Filter } from 'mongodb';
import type { Logger } from '@bazaar/logging';
import type { Money, PricedProduct } from './order';
import {
  applyStockOperations,
  type Reservation,
  type StockState,
  type StockOperation,
  type StockOutcome,
} from './stock';
import { createWriteLocks, type LockDocument } from './write-lock';

/** A catalog product as stored (`products` collection). */
export interface ProductDocument {
  _id: string;
  name: string;
  description: string;
  price: Money;
  stock: number;
  /** Open reservations by order id; see stock.ts. */
  reservations: Record<string, Reservation>;
  createdAt: Date;
}

export interface Product extends PricedProduct {
  readonly description: string;
  readonly stock: number;
}

export interface ProductRepository {
  list(limit: number, after: string | undefined): Promise<Product[]>;
  find(id: string): Promise<Product | undefined>;
  findMany(ids: readonly string[]): Promise<Product[]>;
  /**
   * Names and prices for pricing an order, from a cache kept `pricingCacheTtlMs`: a busy catalog is
   * read once per TTL instead of once per order. Unknown ids are read every time.
   */
  findForPricing(ids: readonly string[]): Promise<PricedProduct[]>;
  /** Inserts products that do not exist yet (by id); returns how many were new. */
  insertMissing(products: readonly Omit<ProductDocument, 'reservations'>[]): Promise<number>;
  isEmpty(): Promise<boolean>;
  /** Applies one stock operation; operations on one product are batched under its write lock. */
  changeStock(productId: string, operation: StockOperation): Promise<StockOutcome>;
  /** Products with reservations older than `before`, for the janitor. */
  staleReservations(
    before: Date,
  ): Promise<{ productId: string; orderId: string; reservation: Reservation }[]>;
}

export interface ProductRepositoryOptions {
  readonly db: Db;
  readonly logger: Logger;
  readonly owner: string;
  readonly lockLeaseMs: number;
  readonly lockWaitMs: number;
  /** How long a product's name and price are reused for pricing; 0 reads them every time. */
  readonly pricingCacheTtlMs?: number;
  readonly now?: () => Date;
}

function toProduct(doc: ProductDocument): Product {
  return {
    id: doc._id,
    name: doc.name,
    description: doc.description,
    price: { amount: doc.price.amount, currency: doc.price.currency },
    stock: doc.stock,
  };
}

const PUBLIC_FIELDS = { name: 1, description: 1, price: 1, stock: 1 } as const;

/** Largest batch of operations applied in one locked read-modify-write of a product. */
const MAX_BATCH = 500;

/** Products whose prices are cached at most; beyond it the cache starts over. */
const MAX_PRICED_CACHE = 10_000;

/** How long a holder of a product's lock waits for one more operation before it gives the lock back. */
const LINGER_MS = 20;

/** Longest a product's lock is kept for consecutive batches before other instances get a turn. */
const MAX_HOLD_MS = 500;

interface Pending {
  readonly operation: StockOperation;
  resolve(outcome: StockOutcome): void;
  reject(error: unknown): void;
}

export function productsCollection(db: Db): Collection<ProductDocument> {
  return db.collection<ProductDocument>('products');
}

export function createProductRepository(options: ProductRepositoryOptions): ProductRepository {
  const { db, logger, now = () => new Date() } = options;
  const products = productsCollection(db);
  const locks = createWriteLocks({
    collection: db.collection<LockDocument>('product_locks'),
    owner: options.owner,
    leaseMs: options.lockLeaseMs,
    waitMs: options.lockWaitMs,
    what: 'product stock',
  });
  // Group commit: operations on one product that arrive while a batch is being written wait and go
  // together in the next one — one lock, one read and one write for all of them. This is what keeps
  // a popular product from serializing every order on four round trips each.
  const queues = new Map<string, Pending[]>();
  // A batch holder waiting for more operations on its product, woken when one is queued.
  const arrivals = new Map<string, () => void>();

  function nextArrival(productId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (arrivals.get(productId) === done) arrivals.delete(productId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      arrivals.set(productId, done);
    });
  }
  // Well inside the lease, so a holder never outlives its own lock.
  const holdMs = Math.min(MAX_HOLD_MS, options.lockLeaseMs / 4);

  /**
   * Applies one batch to the product's state as read under its lock and writes the result; resolves
   * the batch's callers and returns the new state, which stays valid for as long as the lock is held.
   */
  async function writeBatch(
    productId: string,
    state: StockState,
    batch: readonly Pending[],
  ): Promise<StockState> {
    const result = applyStockOperations(
      state,
      batch.map((pending) => pending.operation),
      now(),
    );
    const set: Document = {};
    for (const [orderId, reservation] of Object.entries(result.set)) {
      set[`reservations.${orderId}`] = reservation;
    }
    const unset: Document = {};
    for (const orderId of result.unset) unset[`reservations.${orderId}`] = '';
    if (Object.keys(set).length > 0 || result.unset.length > 0) {
      // The stock condition makes the write a compare-and-set: atomic on MongoDB even without the
      // lock; on FerretDB the lock is what makes it safe.
      const written = await products.updateOne(
        { _id: productId, stock: state.stock },
        {
          $set: { stock: result.state.stock, ...set },
          ...(result.unset.length > 0 ? { $unset: unset } : {}),
        },
      );
      if (written.matchedCount !== 1) {
        throw new Error(`stock of ${productId} changed under its lock`);
      }
    }
    batch.forEach((pending, index) => pending.resolve(result.outcomes[index] ?? 'absent'));
    return result.state;
  }

  /**
   * Writes the product's queued operations. The lock is kept while more operations keep arriving (up
   * to `holdMs`): no other writer can change the product meanwhile, so the state written by one batch
   * is the state the next one starts from — one update per batch instead of lock, read, update and
   * unlock.
   */
  async function drain(productId: string): Promise<void> {
    for (;;) {
      const queue = queues.get(productId);
      if (queue === undefined || queue.length === 0) {
        queues.delete(productId);
        return;
      }
      let batch = queue.splice(0, MAX_BATCH);
      try {
        await locks.withLock(productId, async () => {
          const releaseBy = Date.now() + holdMs;
          const doc = await products.findOne(
            { _id: productId },
            { projection: { stock: 1, reservations: 1 } },
          );
          if (doc === null) {
            for (const pending of batch) {
              pending.resolve(pending.operation.kind === 'reserve' ? 'insufficient' : 'absent');
            }
            return;
          }
          let state: StockState = { stock: doc.stock, reservations: doc.reservations ?? {} };
          for (;;) {
            state = await writeBatch(productId, state, batch);
            // A short wait for the next operation is far cheaper than giving the lock back and
            // taking it again (three round trips) when it comes.
            if (queue.length === 0 && Date.now() + LINGER_MS < releaseBy) {
              await nextArrival(productId, LINGER_MS);
            }
            if (queue.length === 0 || Date.now() >= releaseBy) return;
            batch = queue.splice(0, MAX_BATCH);
          }
        });
      } catch (error) {
        logger.warn({ err: error, productId, operations: batch.length }, 'stock batch failed');
        for (const pending of batch) pending.reject(error);
      }
    }
  }

  const pricingCacheTtlMs = options.pricingCacheTtlMs ?? 0;
  const priced = new Map<
    string,
    { product: PricedProduct | Promise<PricedProduct | undefined>; until: number }
  >();

  async function readPriced(ids: readonly string[]): Promise<Map<string, PricedProduct>> {
    const docs = await products
      .find(ids.length === 1 ? { _id: ids[0] ?? '' } : { _id: { $in: [...ids] } }, {
        projection: { name: 1, price: 1 },
      })
      .toArray();
    return new Map(
      docs.map((doc) => [
        doc._id,
        {
          id: doc._id,
          name: doc.name,
          price: { amount: doc.price.amount, currency: doc.price.currency },
        },
      ]),
    );
  }

  return {
    async list(limit, after) {
      const filter: Filter<ProductDocument> = after === undefined ? {} : { _id: { $gt: after } };
      const docs = await products
        .find(filter, { projection: PUBLIC_FIELDS, sort: { _id: 1 }, limit })
        .toArray();
      return docs.map(toProduct);
    },
    async find(id) {
      const doc = await products.findOne({ _id: id }, { projection: PUBLIC_FIELDS });
      return doc === null ? undefined : toProduct(doc);
    },
    async findMany(ids) {
      const docs = await products
        .find({ _id: { $in: [...ids] } }, { projection: PUBLIC_FIELDS })
        .toArray();
      return docs.map(toProduct);
    },
    async findForPricing(ids) {
      const at = Date.now();
      const found: PricedProduct[] = [];
      const missing: string[] = [];
      const loading: Promise<PricedProduct | undefined>[] = [];
      for (const id of ids) {
        const cached = priced.get(id);
        if (cached === undefined || cached.until <= at) missing.push(id);
        else if (cached.product instanceof Promise) loading.push(cached.product);
        else found.push(cached.product);
      }
      if (missing.length > 0) {
        // Concurrent requests for a product being read wait for that one read.
        const read = readPriced(missing);
        if (pricingCacheTtlMs > 0) {
          if (priced.size > MAX_PRICED_CACHE) priced.clear();
          for (const id of missing) {
            const product = read.then((products) => products.get(id));
            // Whoever waits for it sees a failure; nobody waiting is not an unhandled rejection.
            product.catch(() => undefined);
            priced.set(id, { product, until: at + pricingCacheTtlMs });
          }
          void read.then(
            (products) => {
              for (const id of missing) {
                const product = products.get(id);
                // Unknown products are not remembered: they are read again next time.
                if (product === undefined) priced.delete(id);
                else priced.set(id, { product, until: at + pricingCacheTtlMs });
              }
            },
            () => {
              for (const id of missing) priced.delete(id);
            },
          );
        }
        loading.push(...missing.map((id) => read.then((products) => products.get(id))));
      }
      for (const product of await Promise.all(loading)) {
        if (product !== undefined) found.push(product);
      }
      return found;
    },
    async isEmpty() {
      return (await products.findOne({}, { projection: { _id: 1 } })) === null;
    },
    async insertMissing(seed) {
      // One insert per product, unordered: an instance starting at the same time inserts the others;
      // a duplicate id means that product is there already.
      const results = await Promise.allSettled(
        seed.map((product) => products.insertOne({ ...product, reservations: {} })),
      );
      let inserted = 0;
      for (const result of results) {
        if (result.status === 'fulfilled') inserted += 1;
        else if ((result.reason as { code?: unknown }).code !== 11000) throw result.reason;
      }
      return inserted;
    },
    changeStock(productId, operation) {
      return new Promise<StockOutcome>((resolve, reject) => {
        const queue = queues.get(productId);
        const pending = { operation, resolve, reject };
        if (queue !== undefined) {
          queue.push(pending);
          arrivals.get(productId)?.();
          return;
        }
        queues.set(productId, [pending]);
        void drain(productId);
      });
    },
    async staleReservations(before) {
      const docs = await products.find({}, { projection: { reservations: 1 } }).toArray();
      return docs.flatMap((doc) =>
        Object.entries(doc.reservations ?? {})
          .filter(([, reservation]) => reservation.at.getTime() < before.getTime())
          .map(([orderId, reservation]) => ({ productId: doc._id, orderId, reservation })),
      );
    },
  };
}
