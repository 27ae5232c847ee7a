import { randomUUID } from 'node:crypto';
import { testStack } from '@bazaar/testing';
import { MongoClient } from 'mongodb';
const mongo = new MongoClient(testStack().mongo, { maxPoolSize: 100 });
await mongo.connect();
const db = mongo.db('probe_floor');
await db.collection<{ _id: string; stock: number }>('products').insertOne({ _id: 'p', stock: 1e9 });
const kind = process.argv[2];
const N = 2000;
const t = performance.now();
for (let i = 0; i < N; i += 50) {
  await Promise.all(Array.from({ length: 50 }, async () => {
    if (kind === 'insert') await db.collection<{ _id: string }>('o').insertOne({ _id: randomUUID() });
    else await db.collection<{ _id: string; stock: number }>('products').updateOne({ _id: 'p', stock: { $gte: 1 } }, { $inc: { stock: -1 } });
  }));
}
console.log(`${kind}: ${N} in ${Math.round(performance.now() - t)} ms`);
await db.dropDatabase();
await mongo.close();
