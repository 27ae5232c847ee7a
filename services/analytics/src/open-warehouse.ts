import type { Logger } from '@bazaar/logging';
import { openBigQueryWarehouse } from './bigquery-warehouse';
import type { Config } from './config';
import { openDuckDbWarehouse } from './duckdb-warehouse';
import type { Warehouse } from './warehouse';

/** The configured warehouse adapter, opened and with its tables created. */
export async function openWarehouse(
  config: Pick<
    Config,
    | 'WAREHOUSE_BACKEND'
    | 'WAREHOUSE_PATH'
    | 'WAREHOUSE_MEMORY_LIMIT'
    | 'BIGQUERY_PROJECT_ID'
    | 'BIGQUERY_DATASET'
    | 'BIGQUERY_LOCATION'
    | 'BIGQUERY_API_ENDPOINT'
  >,
  logger: Logger,
): Promise<Warehouse> {
  const warehouse =
    config.WAREHOUSE_BACKEND === 'bigquery'
      ? openBigQueryWarehouse({
          projectId: config.BIGQUERY_PROJECT_ID ?? '',
          dataset: config.BIGQUERY_DATASET,
          location: config.BIGQUERY_LOCATION,
          apiEndpoint: config.BIGQUERY_API_ENDPOINT,
          logger,
        })
      : await openDuckDbWarehouse({
          path: config.WAREHOUSE_PATH ?? '',
          memoryLimit: config.WAREHOUSE_MEMORY_LIMIT,
          logger,
        });
  try {
    await warehouse.open();
  } catch (error) {
    await warehouse.close().catch(() => undefined);
    throw error;
  }
  return warehouse;
}
