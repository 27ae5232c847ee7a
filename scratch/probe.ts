import { randomUUID } from 'node:crypto';
import { registerAndLogin, testStack } from '@bazaar/testing';
import { MongoClient } from 'mongodb';

const stack = testStack();
const base = stack.url('orders');
const users = await Promise.all(Array.from({ length: 10 }, () => registerAndLogin(stack.url('users'))));
const mongo = new MongoClient(stack.mongo);
await mongo.connect();
const products = mongo.db('orders').collection<{ _id: string; stock: number; reservations: Record<string, unknown> }>('products');
const list = await products.find({}, { projection: { _id: 1, stock: 1 } }).toArray();
const hot = process.argv[2] === 'hot';
const pick = () => (hot ? list[0]!._id : list[Math.floor(Math.random() * list.length)]!._id);
let done = 0, failed = 0;
const lat: number[] = [];
const stopAt = Date.now() + 10_000;
const sampler = setInterval(async () => {
  const doc = await products.findOne({ _id: list[0]!._id });
  console.log(`t+${Math.round((Date.now() - stopAt + 10000) / 1000)}s done=${done} reservations(hot)=${Object.keys(doc?.reservations ?? {}).length} size=${JSON.stringify(doc).length}`);
}, 1000);
await Promise.all(Array.from({ length: 50 }, async (_, i) => {
  while (Date.now() < stopAt) {
    const t = performance.now();
    const r = await fetch(`${base}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${users[i % 10]!.tokens.accessToken}`, 'idempotency-key': randomUUID() }, body: JSON.stringify({ items: [{ productId: pick(), quantity: 1 }], payment: { token: 'tok_visa' } }) });
    await r.arrayBuffer();
    if (r.status === 202) { done++; lat.push(performance.now() - t); } else { failed++; if (failed < 3) console.log(r.status, await r.text().catch(() => '')); }
  }
}));
clearInterval(sampler);
lat.sort((a, b) => a - b);
console.log(`${hot ? 'hot' : 'spread'}: ${done / 10}/s failed=${failed} p50=${Math.round(lat[lat.length >> 1] ?? 0)}ms`);
await mongo.close();
