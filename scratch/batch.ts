import { randomUUID } from 'node:crypto';
import { testStack } from '@bazaar/testing';
import { MongoClient } from 'mongodb';
const mongo = new MongoClient(testStack().mongo, { maxPoolSize: 100 });
await mongo.connect();
const col = mongo.db('probe_batch').collection<{ _id: string }>('docs');
await col.insertOne({ _id: 'warm' });
const doc = () => ({ _id: `ord_${randomUUID()}`, userId: 'usr_x', status: 'PENDING', items: [{ productId: 'prd_1', quantity: 1, unitPrice: { amount: 1000, currency: 'EUR' } }], total: { amount: 1000, currency: 'EUR' }, outbox: [{ id: randomUUID(), type: 'order.placed', data: { a: 1 } }] });
for (const round of [1, 2]) {
  let t = performance.now(); let n = 0;
  while (performance.now() - t < 3000) { await Promise.all(Array.from({ length: 50 }, () => col.insertOne(doc() as never))); n += 50; }
  console.log(`round ${round}: 50 concurrent insertOne: ${Math.round(n / ((performance.now() - t) / 1000))}/s`);
  t = performance.now(); n = 0;
  while (performance.now() - t < 3000) { await col.insertMany(Array.from({ length: 50 }, doc) as never[], { ordered: false }); n += 50; }
  console.log(`round ${round}: insertMany of 50: ${Math.round(n / ((performance.now() - t) / 1000))}/s`);
}
await mongo.db('probe_batch').dropDatabase();
await mongo.close();
