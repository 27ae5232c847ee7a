// The BigQuery adapter with the real client library (@google-cloud/bigquery 8) against the BigQuery
// emulator (goccy/bigquery-emulator v0.8.1, built from the Go module proxy into
// $BAZAAR_TOOLS_DIR/bigquery-emulator-v0.8.1/). It needs ~50 minutes of compilation on a small
// machine, so the stack does not install it and this suite is not part of `npm test`: it runs with
// `npm run test:bigquery` (project `bigquery`) and fails when the emulator is missing.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { freePort, readStackConfig } from '@bazaar/stack';
import { eventually } from '@bazaar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBigQueryWarehouse } from '../src/bigquery-warehouse';
import type { Warehouse } from '../src/warehouse';
import { logger } from '../test/analytics.fixture';
import { expectedOf, generateEvents, withDuplicates } from '../test/events.fixture';

const emulator = path.join(
  readStackConfig().toolsDir,
  'bigquery-emulator-v0.8.1',
  'bigquery-emulator',
);
const allTime = { from: new Date('2000-01-01T00:00:00Z'), to: new Date('2100-01-01T00:00:00Z') };

describe('BigQuery adapter against the BigQuery emulator', () => {
  if (!existsSync(emulator)) {
    throw new Error(`the BigQuery emulator is not installed at ${emulator} (see the README)`);
  }
  let child: ChildProcess;
  let endpoint: string;
  let warehouse: Warehouse;
  const distinct = generateEvents(600, 51);
  const expected = expectedOf(distinct);

  beforeAll(async () => {
    const port = await freePort();
    const grpcPort = await freePort();
    child = spawn(
      emulator,
      ['--project=bazaar-test', '--host=127.0.0.1', `--port=${port}`, `--grpc-port=${grpcPort}`],
      { stdio: 'ignore' },
    );
    endpoint = `http://127.0.0.1:${port}`;
    await eventually(
      async () =>
        (await fetch(`${endpoint}/bigquery/v2/projects/bazaar-test/datasets`)).ok
          ? true
          : undefined,
      { timeoutMs: 30_000, what: 'the BigQuery emulator' },
    );
    warehouse = openBigQueryWarehouse({
      projectId: 'bazaar-test',
      dataset: 'analytics_test',
      location: 'US',
      apiEndpoint: endpoint,
      logger,
    });
    await warehouse.open();
  });

  afterAll(() => {
    child?.kill('SIGTERM');
  });

  it('creates the dataset and tables, and opening again changes nothing', async () => {
    await warehouse.open();
    await expect(warehouse.ping()).resolves.toBeUndefined();
  });

  it('appends each event once however often it is offered, and answers the aggregates exactly', async () => {
    const stream = withDuplicates(distinct, 200, 52);
    let inserted = 0;
    for (let start = 0; start < stream.length; start += 250) {
      inserted += (await warehouse.append(stream.slice(start, start + 250))).inserted;
    }
    expect(inserted).toBe(expected.events);
    // A redelivery of everything adds nothing.
    const again = await warehouse.append(distinct.slice(0, 300));
    expect(again).toEqual({ inserted: 0, duplicates: 300 });

    expect(await warehouse.summary(allTime)).toEqual({
      events: expected.events,
      ordersPlaced: expected.ordersPlaced,
      ordersConfirmed: expected.ordersConfirmed,
      ordersCancelled: expected.ordersCancelled,
      paymentsFailed: expected.paymentsFailed,
      revenue: expected.revenue,
      captured: expected.captured,
      refunded: expected.refunded,
    });
    expect(await warehouse.conversion(allTime)).toEqual({
      placed: expected.ordersPlaced,
      confirmed: expected.ordersConfirmed,
      cancelled: expected.ordersCancelled,
    });
    const cancellations = await warehouse.cancellations(allTime);
    expect(Object.fromEntries(cancellations.map((c) => [c.reason, c.count]))).toEqual(
      expected.cancellations,
    );
    const top = await warehouse.topProducts(allTime, 100);
    const quantities = new Map<string, number>();
    for (const item of top) {
      quantities.set(item.productId, (quantities.get(item.productId) ?? 0) + item.quantity);
    }
    expect(quantities).toEqual(expected.productQuantities);
    const series = await warehouse.ordersOverTime(
      { from: new Date('2026-01-10T00:00:00Z'), to: new Date('2026-01-12T00:00:00Z') },
      'hour',
    );
    expect(
      new Map(series.filter((b) => b.ordersPlaced > 0).map((b) => [b.start, b.ordersPlaced])),
    ).toEqual(expected.placedPerHour);
  });

  it('reads back every raw event for replay', async () => {
    const ids = new Set<string>();
    for await (const page of warehouse.readEvents(100)) for (const event of page) ids.add(event.id);
    expect(ids).toEqual(new Set(distinct.map((event) => event.id)));
  });
});
