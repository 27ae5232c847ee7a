import type pg from 'pg';

/**
 * Tuning of the PostgreSQL database behind FerretDB (ADR 0008).
 *
 * FerretDB 1.24 pushes an equality filter down as `_jsonb -> $key @> $value`, and the only index it
 * creates for `_id` is a B-tree on `(_jsonb -> '_id')`, which cannot serve `@>`. Every `find`,
 * `update` and `delete` by `_id` is therefore a sequential scan of the collection, and its cost grows
 * with the collection (2 ms at 5,000 documents, 20 ms at 3,000 orders under load). MongoDB serves the
 * same commands from its `_id` index.
 *
 * The stack gives every FerretDB collection table a GIN index on `(_jsonb -> '_id')`, which serves
 * `@>`, through an event trigger on `CREATE TABLE` (collections are created lazily, by any database
 * name, including the tests' own) and once for the tables that exist already. The pushed-down key is
 * a bound parameter, so only a custom plan (key known at planning time) can match the index
 * expression: the database's `plan_cache_mode` is `force_custom_plan`.
 *
 * Nothing here changes what the services send: they speak the MongoDB API only, and on MongoDB this
 * module has no counterpart.
 */

/** Marks the indexes this module creates, so they are found again and never confused with FerretDB's own. */
export const FERRETDB_ID_INDEX_PREFIX = 'bazaar_id_gin_';

const INDEX_TABLE_FUNCTION = `
CREATE OR REPLACE FUNCTION bazaar_index_ferretdb_table(rel regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  -- FerretDB's own bookkeeping tables start with _ferretdb_; collection tables carry a _jsonb column.
  IF (SELECT relname FROM pg_class WHERE oid = rel) LIKE '\\_ferretdb\\_%' THEN
    RETURN;
  END IF;
  IF NOT EXISTS (
    SELECT 1 FROM pg_attribute WHERE attrelid = rel AND attname = '_jsonb' AND NOT attisdropped
  ) THEN
    RETURN;
  END IF;
  -- fastupdate off: a lookup must not scan a pending list that grows with every insert.
  EXECUTE format(
    'CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> %L) jsonb_path_ops) WITH (fastupdate = off)',
    '${FERRETDB_ID_INDEX_PREFIX}' || rel::oid, rel, '_id'
  );
END
$fn$`;

const EVENT_TRIGGER_FUNCTION = `
CREATE OR REPLACE FUNCTION bazaar_index_new_ferretdb_tables() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  created record;
BEGIN
  FOR created IN
    SELECT objid FROM pg_event_trigger_ddl_commands()
    WHERE command_tag = 'CREATE TABLE' AND object_type = 'table'
  LOOP
    PERFORM bazaar_index_ferretdb_table(created.objid::regclass);
  END LOOP;
END
$fn$`;

const EVENT_TRIGGER = 'bazaar_index_new_ferretdb_tables';

/**
 * Installs the index trigger and the planner setting in FerretDB's database and indexes the tables
 * that exist already. Idempotent; needs the cluster's superuser (event triggers), which the stack's
 * own `bazaar` role is. Runs before FerretDB starts, so its connections see the setting.
 */
export async function tuneFerretdbBackend(client: pg.Client, database: string): Promise<void> {
  await client.query(INDEX_TABLE_FUNCTION);
  await client.query(EVENT_TRIGGER_FUNCTION);
  const { rowCount } = await client.query('SELECT 1 FROM pg_event_trigger WHERE evtname = $1', [
    EVENT_TRIGGER,
  ]);
  if (rowCount === 0) {
    await client.query(
      `CREATE EVENT TRIGGER ${EVENT_TRIGGER} ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
       EXECUTE FUNCTION bazaar_index_new_ferretdb_tables()`,
    );
  }
  await client.query(`ALTER DATABASE "${database}" SET plan_cache_mode = 'force_custom_plan'`);
  const { rows } = await client.query<{ rel: string }>(
    `SELECT c.oid::regclass::text AS rel FROM pg_class c
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = '_jsonb' AND NOT a.attisdropped
     WHERE c.relkind = 'r' AND c.relname NOT LIKE '\\_ferretdb\\_%'`,
  );
  for (const { rel } of rows) {
    await client.query('SELECT bazaar_index_ferretdb_table($1::regclass)', [rel]);
  }
}
