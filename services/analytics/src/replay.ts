// Entry point of `npm run replay -w @bazaar/analytics`; see replay.command.ts. Stop the analytics
// service first when it uses the same DuckDB file: only one process may open it.
import path from 'node:path';
import { createLogger } from '@bazaar/logging';
import { readStackConfig } from '@bazaar/stack';
import { readReplayConfig } from './config';
import { openWarehouse } from './open-warehouse';
import { runReplay } from './replay.command';

const config = readReplayConfig();
const logger = createLogger({ service: 'analytics-replay', level: config.LOG_LEVEL });
const warehousePath =
  config.WAREHOUSE_PATH ??
  path.join(readStackConfig().stateDir, 'data', 'analytics', 'warehouse.duckdb');

process.exitCode = await runReplay(
  process.argv.slice(2),
  () => openWarehouse({ ...config, WAREHOUSE_PATH: warehousePath }, logger),
  {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  },
);
