import { randomUUID } from 'node:crypto';
import { testStack } from '@bazaar/testing';
import { MongoClient, type CommandStartedEvent } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchedInsert } from '../src/command-batch';

interface Claim {
  _id: string;
  token: string;
}

// The claims of concurrent requests (idempotency keys, locks, new orders) are one command on real
// FerretDB, and each caller still learns whether its own `_id` was new.
describe('batchedInsert on FerretDB', () => {
  const database = `orders_batch_${randomUUID().slice(0, 8)}`;
  const mongo = new MongoClient(testStack().mongo, { monitorCommands: true });
  const inserts: CommandStartedEvent[] = [];

  beforeAll(async () => {
    await mongo.connect();
    mongo.on('commandStarted', (event) => {
      if (event.commandName === 'insert' && event.databaseName === database) inserts.push(event);
    });
  });

  afterAll(async () => {
    await mongo.db(database).dropDatabase();
    await mongo.close();
  });

  it('concurrent inserts are one insertMany; each caller learns whether its _id was new', async () => {
    const claims = mongo.db(database).collection<Claim>('claims');
    await claims.insertOne({ _id: 'taken-1', token: 'earlier' });
    await claims.insertOne({ _id: 'taken-2', token: 'earlier' });
    inserts.length = 0;
    const insert = batchedInsert(claims, { isSame: (stored, mine) => stored.token === mine.token });

    const ids = [
      ...Array.from({ length: 30 }, (_, n) => `new-${n}`),
      'taken-1',
      'taken-2',
      'twice',
      'twice',
    ];
    const results = await Promise.all(ids.map((_id) => insert({ _id, token: randomUUID() })));

    expect(inserts).toHaveLength(1);
    expect(inserts[0]?.command.documents).toHaveLength(ids.length);
    expect(results.slice(0, 30)).toEqual(Array.from({ length: 30 }, () => true));
    expect(results.slice(30, 32)).toEqual([false, false]);
    // Of two claims of one new `_id` in the same command, exactly one wins.
    expect(results.slice(32).filter(Boolean)).toHaveLength(1);
    await expect(claims.countDocuments({})).resolves.toBe(2 + 30 + 1);
    await expect(claims.findOne({ _id: 'taken-1' })).resolves.toMatchObject({ token: 'earlier' });
  });

  it('a lone insert is a plain insertOne', async () => {
    const claims = mongo.db(database).collection<Claim>('lone');
    inserts.length = 0;
    const insert = batchedInsert(claims, { isSame: (stored, mine) => stored.token === mine.token });
    await expect(insert({ _id: 'only', token: 'a' })).resolves.toBe(true);
    await expect(insert({ _id: 'only', token: 'b' })).resolves.toBe(false);
    expect(inserts.map((event) => (event.command.documents as unknown[]).length)).toEqual([1, 1]);
  });
});
