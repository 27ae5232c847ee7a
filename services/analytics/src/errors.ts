import { AppError, type FieldIssue } from '@bazaar/errors';

// The service's failures, worded once. Codes come from the shared catalog; a stable `reason`
// extension member tells causes apart where a client or operator may need to.

export function invalidFields(errors: readonly FieldIssue[]): AppError {
  const noun = errors.length === 1 ? 'parameter' : 'parameters';
  return new AppError('VALIDATION_FAILED', `The request has ${errors.length} invalid ${noun}.`, {
    details: { errors },
  });
}

/** Another process holds the DuckDB file: analytics runs as a single writer (see README). */
export function warehouseLocked(path: string, cause: unknown): AppError {
  return new AppError(
    'SERVICE_UNAVAILABLE',
    `The warehouse ${path} is open in another process. Analytics writes its DuckDB file from ` +
      'exactly one process: run one instance (npm run scale -- analytics=1), or point this one at ' +
      'another WAREHOUSE_PATH, or use WAREHOUSE_BACKEND=bigquery.',
    { cause, details: { reason: 'warehouse_locked' } },
  );
}
