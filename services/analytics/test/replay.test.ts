// Replay: the raw events table is the retained log. Facts rebuilt from it, and a whole warehouse
// rebuilt from an export, answer exactly as before; every replay is idempotent.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { readStackConfig, repoRoot } from '@bazaar/stack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReplay, type ReplayIo } from '../src/replay.command';
import type { Summary, Warehouse } from '../src/warehouse';
import { openTestWarehouse, tempDir } from './analytics.fixture';
import { expectedOf, generateEvents, withDuplicates } from './events.fixture';

const run = promisify(execFile);
const allTime = { from: new Date('2000-01-01T00:00:00Z'), to: new Date('2100-01-01T00:00:00Z') };

function captureIo(): ReplayIo & { text: () => string } {
  let text = '';
  return {
    out: (chunk) => (text += chunk),
    err: (chunk) => (text += chunk),
    text: () => text,
  };
}

async function summaryOf(file: string): Promise<Summary> {
  const warehouse = await openTestWarehouse(file);
  try {
    return await warehouse.summary(allTime);
  } finally {
    await warehouse.close();
  }
}

async function execSql(file: string, sql: string): Promise<void> {
  const instance = await DuckDBInstance.create(file);
  try {
    const connection = await instance.connect();
    await connection.run(sql);
    connection.closeSync();
  } finally {
    instance.closeSync();
  }
}

describe('analytics replay', () => {
  let dir: { dir: string; remove: () => Promise<void> };
  let file: string;
  let original: Summary;
  const distinct = generateEvents(6_000, 31);
  const expected = expectedOf(distinct);

  beforeAll(async () => {
    dir = await tempDir();
    file = path.join(dir.dir, 'warehouse.duckdb');
    const warehouse: Warehouse = await openTestWarehouse(file);
    await warehouse.append(withDuplicates(distinct, 1_000, 32));
    original = await warehouse.summary(allTime);
    await warehouse.close();
    expect(original.events).toBe(expected.events);
    expect(original.revenue).toEqual(expected.revenue);
  });

  afterAll(async () => {
    await dir.remove();
  });

  it('rebuilds lost or damaged facts from the raw events, idempotently', async () => {
    await execSql(
      file,
      `DELETE FROM order_facts WHERE kind = 'confirmed';
       DELETE FROM payment_facts;
       INSERT INTO order_facts SELECT * FROM order_facts WHERE kind = 'placed';`,
    );
    const damaged = await summaryOf(file);
    expect(damaged.ordersConfirmed).toBe(0);
    expect(damaged.ordersPlaced).toBe(2 * expected.ordersPlaced);

    for (let round = 0; round < 2; round += 1) {
      const io = captureIo();
      expect(await runReplay([], () => openTestWarehouse(file), io)).toBe(0);
      expect(io.text()).toContain(`facts rebuilt from ${expected.events} raw events`);
      expect(await summaryOf(file)).toEqual(original);
    }
  });

  it('rebuilds a warehouse from scratch out of an export, and a second import adds nothing', async () => {
    const exported = path.join(dir.dir, 'events.ndjson');
    const exportIo = captureIo();
    expect(await runReplay(['--export', exported], () => openTestWarehouse(file), exportIo)).toBe(
      0,
    );
    expect(exportIo.text()).toContain(`${expected.events} events exported`);

    const fresh = path.join(dir.dir, 'rebuilt', 'warehouse.duckdb');
    const first = captureIo();
    expect(await runReplay(['--input', exported], () => openTestWarehouse(fresh), first)).toBe(0);
    expect(first.text()).toContain(`${expected.events} events added, 0 already present`);
    expect(await summaryOf(fresh)).toEqual(original);

    const second = captureIo();
    expect(await runReplay(['--input', exported], () => openTestWarehouse(fresh), second)).toBe(0);
    expect(second.text()).toContain(`0 events added, ${expected.events} already present`);
    expect(await summaryOf(fresh)).toEqual(original);
  });

  it('runs as the documented npm command, and refuses a warehouse another process holds', async () => {
    const env = { ...readStackConfig().hostEnv, WAREHOUSE_PATH: file, LOG_LEVEL: 'warn' };
    const { stdout } = await run('npm', ['run', '--silent', 'replay', '-w', '@bazaar/analytics'], {
      cwd: repoRoot,
      env,
    });
    expect(stdout).toContain(`facts rebuilt from ${expected.events} raw events`);

    const holder = await openTestWarehouse(file);
    try {
      const failure = await run('npm', ['run', '--silent', 'replay', '-w', '@bazaar/analytics'], {
        cwd: repoRoot,
        env,
      }).then(
        () => undefined,
        (error: { code?: number; stderr?: string }) => error,
      );
      expect(failure?.code).toBe(1);
      expect(failure?.stderr).toContain('is open in another process');
    } finally {
      await holder.close();
    }
  });
});
