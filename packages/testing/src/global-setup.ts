import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '@bazaar/stack';

/**
 * Vitest global setup of the integration project: makes sure the `test` profile of the local
 * stack is up. `npm test` has already started it (then this is a fast no-op); running vitest
 * directly starts it here and leaves it running for the next run (`npm stop -- --profile test`).
 */
export default function setup(): void {
  const result = spawnSync(
    process.execPath,
    [path.join(repoRoot, 'stack', 'bin', 'bazaar.mjs'), 'start', '--profile', 'test'],
    { stdio: ['ignore', 'ignore', 'inherit'], cwd: repoRoot },
  );
  if (result.status !== 0) {
    throw new Error('the test stack did not start: run `npm start -- --profile test` to see why');
  }
}
