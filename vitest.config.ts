import { defineConfig } from 'vitest/config';

// Two main projects: `unit` is pure and fast (part of `npm run check`); `integration` talks to the real
// servers of the local stack's `test` profile, which its global setup brings up (see stack/README.md).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            '{packages,services,stack}/*/src/**/*.test.ts',
            'stack/src/**/*.test.ts',
            'tests/unit/**/*.test.ts',
          ],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: [
            '{packages,services}/*/test/**/*.test.ts',
            'stack/test/**/*.test.ts',
            'tests/{e2e,chaos}/**/*.test.ts',
          ],
          environment: 'node',
          globalSetup: ['packages/testing/src/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // Suites share one stack; files run one at a time so fault tests never disturb a neighbour.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
      {
        // `npm run k8s -- test`, before the cluster exists: the rendered chart (needs helm).
        test: {
          name: 'k8s',
          include: ['deploy/k8s/test/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
      {
        // `npm run k8s -- test`, against the live local cluster that `up` built (one file, in order).
        test: {
          name: 'k8s-cluster',
          include: ['deploy/k8s/test/cluster/*.test.ts'],
          environment: 'node',
          testTimeout: 600_000,
          hookTimeout: 120_000,
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
      {
        // Opt-in: needs the BigQuery emulator, a ~50-minute build (services/analytics/README.md).
        test: {
          name: 'bigquery',
          include: ['services/analytics/test-bigquery/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['packages/testing/src/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
