import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  fetchStatus,
  infraUrls,
  localAdmin,
  portOf,
  type PortName,
  readStackConfig,
  repoRoot,
  type InstanceStatus,
  type StackSecrets,
} from '@bazaar/stack';
import { stackProfile } from './config';

/** Connection URLs of the `test` (or, in benchmarks, `bench`) profile's real servers (started by the integration global setup). */
export interface TestStack {
  readonly postgres: string;
  readonly mongo: string;
  readonly redis: string;
  readonly rabbitmq: string;
  readonly etcd: string;
  /** A PostgreSQL URL for another database of the same cluster. */
  readonly postgresDatabase: (name: string) => string;
  /** Base URL (http://127.0.0.1:<port>) of a component's first instance, e.g. `url('orders')`. */
  readonly url: (component: PortName) => string;
  /** The users service's local admin on this stack (log in through `url('users')`). */
  readonly admin: { readonly email: string; readonly password: string };
}

/** Where the test profile's servers listen and how to log in (credentials from its secrets file). */
export function testStack(): TestStack {
  const config = readStackConfig(stackProfile());
  const secrets = JSON.parse(
    readFileSync(path.join(config.stateDir, 'secrets.json'), 'utf8'),
  ) as StackSecrets;
  const ctx = { config, secrets, port: (name: PortName) => portOf(config, name) };
  const admin = localAdmin(ctx);
  if (admin === undefined) throw new Error(`the ${config.profile} stack has no local admin`);
  return {
    ...infraUrls(ctx),
    postgresDatabase: (name) => infraUrls(ctx, name).postgres,
    url: (component) => `http://127.0.0.1:${ctx.port(component)}`,
    admin,
  };
}

/** The test profile's live status, one entry per process (as `npm run status -- --json`). */
export async function testStackStatus(): Promise<InstanceStatus[]> {
  const report = await fetchStatus(readStackConfig(stackProfile()));
  if (report === undefined) throw new Error('the test stack is not running');
  return report.components;
}

/** Scales a service of the test profile to `count` instances (`npm run scale`), as an operator would. */
export function scaleTestStack(service: string, count: number): void {
  const result = spawnSync(
    process.execPath,
    [
      path.join(repoRoot, 'stack', 'bin', 'bazaar.mjs'),
      'scale',
      '--profile',
      stackProfile(),
      `${service}=${count}`,
    ],
    { cwd: repoRoot, encoding: 'utf8' },
  );
  if (result.status !== 0)
    throw new Error(`scale ${service}=${count} failed:\n${result.stdout}${result.stderr}`);
}

/** Polls `check` until it returns a value or the timeout passes (then throws with the last error). */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 15_000, intervalMs = 200, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`${what} not met within ${timeoutMs} ms`, { cause: lastError });
}
