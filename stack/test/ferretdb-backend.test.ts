import { randomUUID } from 'node:crypto';
import { testStack } from '@bazaar/testing';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FERRETDB_ID_INDEX_PREFIX } from '../src/ferretdb-backend';

// ADR 0008: FerretDB 1.24 pushes `{ _id: x }` down as `_jsonb -> $1 @> $2`, which its own B-tree
// `_id` index cannot serve. The stack adds a GIN index to every collection table, including tables
// created after it started, and makes the planner use it for FerretDB's prepared statements.
describe('FerretDB backend tuning (the stack)', () => {
  const stack = testStack();
  const database = `ferret_tuning_${randomUUID().slice(0, 8)}`;
  const mongo = new MongoClient(stack.mongo);
  const sql = new pg.Client({ connectionString: stack.postgresDatabase('ferretdb') });

  beforeAll(async () => {
    await mongo.connect();
    await sql.connect();
  });

  afterAll(async () => {
    await mongo.db(database).dropDatabase();
    await mongo.close();
    await sql.end();
  });

  it('indexes a collection created after the stack started, and FerretDB lookups by _id use that index', async () => {
    const things = mongo.db(database).collection<{ _id: string; n: number }>('things');
    await things.insertMany(Array.from({ length: 3000 }, (_, n) => ({ _id: `thg_${n}`, n })));

    const { rows: tables } = await sql.query<{ table: string; index: string }>(
      `SELECT t.tablename AS table, i.indexname AS index FROM pg_tables t
       JOIN pg_indexes i ON i.schemaname = t.schemaname AND i.tablename = t.tablename
       WHERE t.schemaname = $1 AND t.tablename LIKE 'things%' AND i.indexname LIKE $2`,
      [database, `${FERRETDB_ID_INDEX_PREFIX}%`],
    );
    expect(tables).toHaveLength(1);
    const table = `"${database}"."${tables[0]?.table ?? ''}"`;

    // The statement FerretDB prepares for `find({ _id })`, run more often than the planner's
    // five custom plans after which it may switch to a generic plan that cannot match the index.
    const { rows: mode } = await sql.query<{ plan_cache_mode: string }>('SHOW plan_cache_mode');
    expect(mode[0]?.plan_cache_mode).toBe('force_custom_plan');
    await sql.query(
      `PREPARE by_id(text, jsonb) AS SELECT _jsonb FROM ${table} WHERE _jsonb -> $1 @> $2`,
    );
    let plan = '';
    for (let run = 0; run < 8; run += 1) {
      const { rows } = await sql.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN EXECUTE by_id('_id', '"thg_${run}"')`,
      );
      plan = rows.map((row) => row['QUERY PLAN']).join('\n');
    }
    expect(plan).toContain(tables[0]?.index);
    expect(plan).not.toContain('Seq Scan');
    await sql.query('DEALLOCATE by_id');

    // The MongoDB API is unchanged: the lookup answers the right document, and FerretDB's own unique
    // `_id` index still refuses a duplicate.
    await expect(things.findOne({ _id: 'thg_2999' })).resolves.toEqual({
      _id: 'thg_2999',
      n: 2999,
    });
    await expect(things.insertOne({ _id: 'thg_7', n: -1 })).rejects.toMatchObject({ code: 11000 });
    await expect(things.countDocuments({ _id: 'thg_7' })).resolves.toBe(1);
  });
});
