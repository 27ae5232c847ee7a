import { MongoClient, type Collection, type Document } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startPrivateServers, testStack, type PrivateServers } from '@bazaar/testing';
import {
  createEventBus,
  ensureOutboxIndex,
  outboxEntries,
  pushToOutbox,
  startMongoOutboxRelay,
  type EventBus,
  type MongoOutboxFields,
} from '../src/index';
import {
  Received,
  removeTopology,
  TEST_TYPE,
  testEvent,
  testLogger,
  uniqueName,
  validateTestEvent,
  waitUntilDrained,
} from './broker-fixture';

const url = testStack().rabbitmq;
const exchange = uniqueName('bus-test.events');
const groups: string[] = [];
let servers: PrivateServers;
let mongo: MongoClient;
let bus: EventBus;

interface Order extends MongoOutboxFields {
  _id: string;
  status: string;
}

beforeAll(async () => {
  // A private FerretDB: these tests hammer it with concurrent writes, and the shared one must stay healthy.
  servers = await startPrivateServers(['mongo']);
  mongo = new MongoClient(servers.urls.mongo);
  await mongo.connect();
  bus = createEventBus({ url, logger: testLogger, validate: validateTestEvent, exchange });
});

afterAll(async () => {
  await bus.close();
  await mongo.close();
  await servers.close();
  await removeTopology(url, { groups, exchange });
});

async function setUp(): Promise<{ orders: Collection<Order>; received: Received; group: string }> {
  const orders = mongo.db('event_bus_test').collection<Order>(uniqueName('orders'));
  await ensureOutboxIndex(orders as unknown as Collection<Document>);
  const received = new Received();
  const group = uniqueName('bus-test.mongo');
  groups.push(group);
  await bus.consume({ group, handlers: { [TEST_TYPE]: received.handler }, prefetch: 200 });
  return { orders, received, group };
}

function startRelay(
  orders: Collection<Order>,
  options: {
    owner?: string;
    leaseMs?: number;
    scanIntervalMs?: number;
    deferRemovalMs?: number;
  } = {},
) {
  return startMongoOutboxRelay({
    collection: orders as unknown as Collection<Document>,
    bus,
    logger: testLogger,
    pollIntervalMs: 100,
    batchSize: 50,
    ...options,
  });
}

/**
 * Starts a relay whose start-up search has provably run: a sentinel document is in the collection
 * before it starts, and the relay is handed back once the sentinel's event has arrived. A document
 * written after that is found only by what the test does (wake, written) or a periodic search.
 */
async function startSearchedRelay(
  orders: Collection<Order>,
  received: Received,
  options: Parameters<typeof startRelay>[1] = {},
) {
  const sentinel = testEvent(0);
  await orders.insertOne({
    _id: 'ord_sentinel',
    status: 'PENDING',
    outbox: outboxEntries([sentinel], validateTestEvent),
  });
  const relay = startRelay(orders, options);
  await received.waitFor(1);
  return { relay, sentinel };
}

describe('MongoDB (FerretDB) embedded outbox relay', () => {
  it('publishes the events embedded in documents, removes exactly those, and publishes events pushed later', async () => {
    const { orders, received, group } = await setUp();
    const placed = Array.from({ length: 40 }, (_, n) => testEvent(n));
    await orders.insertMany(
      placed.map((event, n) => ({
        _id: `ord_${n}`,
        status: 'PENDING',
        outbox: outboxEntries([event], validateTestEvent),
      })),
    );
    const relay = startRelay(orders);
    await received.waitFor(40);
    // On FerretDB 1.24 a business write racing the relay's removal on the same document can lose one of
    // them (see the README), so the second wave starts once the first one is removed.
    await eventually(async () =>
      (await orders.countDocuments({ 'outbox.eventId': { $exists: true } })) === 0
        ? true
        : undefined,
    );
    // Each order changes state and emits a second event in the same single-document update.
    const confirmed = Array.from({ length: 40 }, (_, n) => testEvent(100 + n));
    for (const [n, event] of confirmed.entries()) {
      await orders.updateOne(
        { _id: `ord_${n}`, status: 'PENDING' },
        { $set: { status: 'CONFIRMED' }, ...pushToOutbox([event], validateTestEvent) },
      );
    }

    await received.waitFor(80);
    await eventually(async () =>
      (await orders.countDocuments({ 'outbox.eventId': { $exists: true } })) === 0
        ? true
        : undefined,
    );
    await relay.stop();
    await waitUntilDrained(url, group);
    expect(received.events).toHaveLength(80);
    expect(new Set(received.ids())).toEqual(
      new Set([...placed, ...confirmed].map((event) => event.id)),
    );
    const documents = await orders.find({}).toArray();
    expect(documents.every((doc) => doc.status === 'CONFIRMED' && doc.outbox?.length === 0)).toBe(
      true,
    );
    expect(
      await mongo
        .db('event_bus_test')
        .collection(`${orders.collectionName}_outbox_leases`)
        .countDocuments(),
    ).toBe(0);
    expect(relay.publishedCount).toBe(80);
  });

  it('leaves a document leased by another relay alone until the lease expires, then takes it over', async () => {
    const { orders, received } = await setUp();
    const leased = testEvent(1);
    const free = testEvent(2);
    await orders.insertMany([
      { _id: 'ord_leased', status: 'PENDING', outbox: outboxEntries([leased], validateTestEvent) },
      { _id: 'ord_free', status: 'PENDING', outbox: outboxEntries([free], validateTestEvent) },
    ]);
    // A relay that died holding the first document.
    await mongo
      .db('event_bus_test')
      .collection(`${orders.collectionName}_outbox_leases`)
      .insertOne({
        _id: 'ord_leased' as never,
        owner: 'dead-relay',
        token: 'lost',
        until: new Date(Date.now() + 5000),
      });
    const relay = startRelay(orders);

    await received.waitFor(1);
    expect(received.ids()).toEqual([free.id]);
    expect((await orders.findOne({ _id: 'ord_leased' }))?.outbox).toHaveLength(1);
    await received.waitFor(2);
    await relay.stop();
    expect(received.ids()).toEqual([free.id, leased.id]);
    expect(await orders.findOne({ _id: 'ord_leased' })).toMatchObject({ outbox: [] });
  });

  it('publishes documents named by wake(ids) without searching; unnamed ones wait for the next search', async () => {
    const { orders, received, group } = await setUp();
    // Searches only at start (before the documents below exist) and when asked by a wake() naming
    // nothing.
    const { relay, sentinel } = await startSearchedRelay(orders, received, {
      scanIntervalMs: 3_600_000,
    });
    const named = testEvent(1);
    const unnamed = testEvent(2);
    await orders.insertMany([
      { _id: 'ord_named', status: 'PENDING', outbox: outboxEntries([named], validateTestEvent) },
      {
        _id: 'ord_unnamed',
        status: 'PENDING',
        outbox: outboxEntries([unnamed], validateTestEvent),
      },
    ]);
    relay.wake(['ord_named']);
    await received.waitFor(2);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(received.ids()).toEqual([sentinel.id, named.id]);
    expect(await orders.findOne({ _id: 'ord_named' })).toMatchObject({ outbox: [] });
    expect((await orders.findOne({ _id: 'ord_unnamed' }))?.outbox).toHaveLength(1);

    relay.wake();
    await received.waitFor(3);
    await eventually(async () =>
      (await orders.findOne({ _id: 'ord_unnamed' }))?.outbox?.length === 0 ? true : undefined,
    );
    await relay.stop();
    await waitUntilDrained(url, group);
    expect(received.ids()).toEqual([sentinel.id, named.id, unnamed.id]);
    expect(relay.publishedCount).toBe(3);
  });

  it('publishes the entries handed over by written() without reading the document, and removes only those', async () => {
    const { orders, received, group } = await setUp();
    const { relay, sentinel } = await startSearchedRelay(orders, received, {
      scanIntervalMs: 3_600_000,
    });
    const [handed, other] = [testEvent(1), testEvent(2)];
    const entries = outboxEntries([handed, other], validateTestEvent);
    await orders.insertOne({ _id: 'ord_written', status: 'PENDING', outbox: entries });
    // Only the first entry is handed over: the relay must publish and remove exactly that one.
    relay.written([{ id: 'ord_written', entries: entries.slice(0, 1) }]);
    await received.waitFor(2);
    await eventually(async () =>
      (await orders.findOne({ _id: 'ord_written' }))?.outbox?.length === 1 ? true : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(received.ids()).toEqual([sentinel.id, handed.id]);
    expect((await orders.findOne({ _id: 'ord_written' }))?.outbox?.[0]?.eventId).toBe(other.id);

    relay.wake();
    await received.waitFor(3);
    await relay.stop();
    await waitUntilDrained(url, group);
    expect(received.ids()).toEqual([sentinel.id, handed.id, other.id]);
    expect(await orders.findOne({ _id: 'ord_written' })).toMatchObject({ outbox: [] });
  });

  it('with deferRemovalMs, published entries wait for the next write (takePublished) and are not published again', async () => {
    const { orders, received, group } = await setUp();
    // Only the explicit wake() below searches: a search running while written() publishes may read
    // the entries before they are marked published and publish them again (at least once, by
    // design), which is not what this test is about. The start-up search has run first.
    const { relay, sentinel } = await startSearchedRelay(orders, received, {
      deferRemovalMs: 60_000,
      scanIntervalMs: 3_600_000,
    });
    const [first, second, third] = [testEvent(1), testEvent(2), testEvent(3)];
    const firstEntries = outboxEntries([first], validateTestEvent);
    const secondEntries = outboxEntries([second], validateTestEvent);
    await orders.insertMany([
      { _id: 'ord_taken', status: 'PENDING', outbox: firstEntries },
      { _id: 'ord_left', status: 'PENDING', outbox: secondEntries },
    ]);
    relay.written([
      { id: 'ord_taken', entries: firstEntries },
      { id: 'ord_left', entries: secondEntries },
    ]);
    await received.waitFor(3);
    // Published, still in the documents, and a search does not publish them again.
    relay.wake();
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(received.events).toHaveLength(3);
    expect((await orders.findOne({ _id: 'ord_taken' }))?.outbox).toHaveLength(1);

    // The aggregate's next write takes them and replaces the outbox with its own new entry.
    const taken = relay.takePublished('ord_taken');
    expect(taken?.map((entry) => entry.eventId)).toEqual([first.id]);
    expect(relay.takePublished('ord_taken')).toBeUndefined();
    const thirdEntries = outboxEntries([third], validateTestEvent);
    await orders.updateOne(
      { _id: 'ord_taken' },
      { $set: { status: 'CONFIRMED', outbox: thirdEntries } },
    );
    relay.written([{ id: 'ord_taken', entries: thirdEntries }]);
    await received.waitFor(4);
    // Stopping removes what is still owed (the untaken ones), so a restart publishes nothing again.
    await relay.stop();
    await waitUntilDrained(url, group);
    expect(received.ids()).toEqual([sentinel.id, first.id, second.id, third.id]);
    expect(await orders.findOne({ _id: 'ord_sentinel' })).toMatchObject({ outbox: [] });
    expect(await orders.findOne({ _id: 'ord_left' })).toMatchObject({ outbox: [] });
    expect(await orders.findOne({ _id: 'ord_taken' })).toMatchObject({ outbox: [] });
  });

  it('two relays share the documents through leases and publish every event exactly once', async () => {
    const { orders, received, group } = await setUp();
    const events = Array.from({ length: 300 }, (_, n) => testEvent(n));
    await orders.insertMany(
      events.map((event, n) => ({
        _id: `ord_${n}`,
        status: 'PENDING',
        outbox: outboxEntries([event], validateTestEvent),
      })),
    );
    const relays = [
      startRelay(orders, { owner: 'relay-a' }),
      startRelay(orders, { owner: 'relay-b' }),
    ];

    await received.waitFor(300);
    await eventually(async () =>
      (await orders.countDocuments({ 'outbox.eventId': { $exists: true } })) === 0
        ? true
        : undefined,
    );
    await Promise.all(relays.map((relay) => relay.stop()));
    await waitUntilDrained(url, group);
    expect(new Set(received.ids())).toEqual(new Set(events.map((event) => event.id)));
    const [a, b] = relays.map((relay) => relay.publishedCount) as [number, number];
    expect(a + b).toBe(received.events.length);
    expect(received.events).toHaveLength(300);
  });
});
