import type { Collection } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { batchedInsert, CallFailed, CommandBatch } from './command-batch';

interface Claim {
  _id: string;
  token: string;
}

describe('CommandBatch', () => {
  it('runs the calls of one event-loop turn as one command and fails only a CallFailed call', async () => {
    const commands: number[][] = [];
    const batch = new CommandBatch<number, number>((inputs) => {
      commands.push(inputs);
      return Promise.resolve(
        inputs.map((n) => (n === 3 ? new CallFailed(new Error('three')) : n * 2)),
      );
    });
    const results = await Promise.allSettled([1, 2, 3, 4].map((n) => batch.run(n)));
    expect(commands).toEqual([[1, 2, 3, 4]]);
    expect(
      results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
    ).toEqual([2, 4, 'three', 8]);
    await expect(batch.run(5)).resolves.toBe(10);
    expect(commands).toHaveLength(2);
  });
});

// The path after an insertMany that failed for another reason than duplicates cannot be provoked on
// a healthy FerretDB, so a stand-in collection plays the failure; what is decided from it is ours.
describe('batchedInsert after an unexpected failure', () => {
  it('asks what is stored: own documents were inserted, foreign ones lost, missing ones fail', async () => {
    const stored = new Map<string, Claim>([
      ['mine', { _id: 'mine', token: 'm' }],
      ['theirs', { _id: 'theirs', token: 'someone else' }],
    ]);
    const failure = new Error('connection reset');
    const collection = {
      insertMany: () => Promise.reject(failure),
      findOne: (filter: { _id: string }) => Promise.resolve(stored.get(filter._id) ?? null),
    } as unknown as Collection<Claim>;
    const insert = batchedInsert(collection, { isSame: (a, b) => a.token === b.token });
    const results = await Promise.allSettled([
      insert({ _id: 'mine', token: 'm' }),
      insert({ _id: 'theirs', token: 't' }),
      insert({ _id: 'missing', token: 'x' }),
    ]);
    expect(results).toEqual([
      { status: 'fulfilled', value: true },
      { status: 'fulfilled', value: false },
      { status: 'rejected', reason: failure },
    ]);
  });
});
