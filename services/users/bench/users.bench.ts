// `npm run bench -- users`: login and GET /v1/users/me throughput (profile cache hit vs miss) of
// the users service running as its own process, against the bench stack's PostgreSQL and Redis.
// The same run measures /livez of the same process as the framework baseline.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  describeMachine,
  freePort,
  readStackConfig,
  repoRoot,
  writeBenchmarkSection,
} from '@bazaar/stack';
import { testStack } from '@bazaar/testing';
import autocannon from 'autocannon';
import pg from 'pg';

const DURATION_SECONDS = 10;
const READ_CONNECTIONS = 50;
const LOGIN_CONNECTIONS = 16;
const DATABASE = 'users_bench';
const PASSWORD = 'benchmark password 1234';
// Logins spread over many accounts, as real ones are: concurrent attempts on one account from one
// address count against its brute-force limit until they succeed.
const LOGIN_ACCOUNTS = 64;

const stack = readStackConfig(); // BAZAAR_PROFILE=bench, set by `npm run bench`
const infra = testStack();
const urls = { ...infra, postgres: infra.postgresDatabase(DATABASE) };
const adminUrl = infra.postgres;
const serviceDir = path.join(repoRoot, 'services', 'users');

async function withAdmin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

interface Instance {
  readonly url: string;
  readonly child: ChildProcess;
}

/** The service as `npm start` runs it (its esbuild bundle), or from source when not built. */
async function startInstance(name: string, env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  const bundle = path.join(serviceDir, 'dist', 'main.mjs');
  const args = existsSync(bundle) ? [bundle] : ['--import', 'tsx', 'src/main.ts'];
  const child = spawn(process.execPath, args, {
    cwd: serviceDir,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      PATH: stack.childEnv.PATH,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      SERVICE_INSTANCE_ID: name,
      LOG_LEVEL: 'info',
      DATABASE_URL: urls.postgres,
      REDIS_URL: urls.redis,
      RABBITMQ_URL: urls.rabbitmq,
      REDIS_KEY_PREFIX: `users-bench-${name}:`,
      USERS_KEY_ENCRYPTION_KEY: 'benchmark-only key-encryption key, 32+ characters long',
      ...env,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    const ready = await fetch(`${url}/readyz`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) return { url, child };
    await sleep(100);
  }
  child.kill('SIGTERM');
  throw new Error(`${name} did not become ready`);
}

async function stopInstance(instance: Instance): Promise<void> {
  if (instance.child.exitCode !== null) return;
  const exited = new Promise((resolve) => instance.child.once('exit', resolve));
  instance.child.kill('SIGTERM');
  await exited;
}

async function json<T>(url: string, init: RequestInit): Promise<T> {
  const response = await fetch(url, {
    ...init,
    headers: { 'content-type': 'application/json', ...init.headers },
  });
  if (!response.ok)
    throw new Error(`${init.method} ${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

interface Measurement {
  readonly label: string;
  readonly connections: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly total: number;
  readonly non2xx: number;
}

async function measure(
  label: string,
  options: autocannon.Options & { connections: number },
): Promise<Measurement> {
  const result = await autocannon({ duration: DURATION_SECONDS, ...options });
  const measurement = {
    label,
    connections: options.connections,
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    total: result.requests.total,
    non2xx: result.non2xx + result.errors,
  };
  console.log(
    `bench users: ${label}: ${measurement.requestsPerSecond} req/s, p50 ${measurement.p50Ms} ms, p99 ${measurement.p99Ms} ms (${measurement.total} requests, ${measurement.non2xx} failed)`,
  );
  return measurement;
}

await withAdmin(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
await withAdmin(`CREATE DATABASE ${DATABASE}`);
const cached = await startInstance('cached', {});
// Profiles expire 1 ms after they are cached: every read is a miss that refills from PostgreSQL
// through the same path (lock, double-check, query, store) a real miss takes.
const uncached = await startInstance('uncached', { PROFILE_CACHE_TTL_MS: '1' });
const results: Measurement[] = [];
try {
  const emails = Array.from({ length: LOGIN_ACCOUNTS }, (_, index) => `bench-${index}@example.com`);
  for (const address of emails) {
    await json(`${cached.url}/v1/users`, {
      method: 'POST',
      body: JSON.stringify({ email: address, password: PASSWORD, name: 'Bench' }),
    });
  }
  const [email = ''] = emails;
  let nextAccount = 0;
  const { accessToken } = await json<{ accessToken: string }>(`${cached.url}/v1/auth/login`, {
    method: 'POST',
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  const bearer = { authorization: `Bearer ${accessToken}` };
  // Warm both instances (JIT, pools) before measuring.
  for (const instance of [cached, uncached]) {
    await autocannon({
      url: `${instance.url}/v1/users/me`,
      headers: bearer,
      connections: 10,
      duration: 2,
    });
  }

  results.push(
    await measure('GET /livez (framework baseline)', {
      url: `${cached.url}/livez`,
      connections: READ_CONNECTIONS,
    }),
    await measure('GET /v1/users/me, cache hit', {
      url: `${cached.url}/v1/users/me`,
      headers: bearer,
      connections: READ_CONNECTIONS,
    }),
    await measure('GET /v1/users/me, cache miss (PostgreSQL)', {
      url: `${uncached.url}/v1/users/me`,
      headers: bearer,
      connections: READ_CONNECTIONS,
    }),
    await measure('POST /v1/auth/login (argon2id m=19 MiB, t=2)', {
      url: `${cached.url}/v1/auth/login`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      requests: [
        {
          setupRequest: (request) => {
            nextAccount = (nextAccount + 1) % LOGIN_ACCOUNTS;
            return {
              ...request,
              body: JSON.stringify({ email: emails[nextAccount], password: PASSWORD }),
            };
          },
        },
      ],
      connections: LOGIN_CONNECTIONS,
    }),
  );
} finally {
  await stopInstance(cached);
  await stopInstance(uncached);
  await withAdmin(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
}

const failed = results.filter((result) => result.non2xx > 0);
const rows = results
  .map(
    (r) =>
      `| ${r.label} | ${r.connections} | **${r.requestsPerSecond}** | ${r.p50Ms} | ${r.p99Ms} | ${r.total} | ${r.non2xx} |`,
  )
  .join('\n');
const [baseline, hit, miss, login] = results;
const ratio = (a: Measurement | undefined, b: Measurement | undefined) =>
  a === undefined || b === undefined
    ? 'n/a'
    : `${(a.requestsPerSecond / b.requestsPerSecond).toFixed(2)}×`;

writeBenchmarkSection(
  'users',
  `## users: login and profile reads

Measured ${new Date().toISOString().slice(0, 10)} on ${describeMachine()}. The users service runs as
its own process (the esbuild bundle \`npm start\` runs, \`NODE_ENV=production\`, \`LOG_LEVEL=info\`,
one instance) against the \`${stack.profile}\` stack's PostgreSQL 15 and Redis 7 on loopback; load from
[autocannon](https://github.com/mcollina/autocannon) in the benchmark's process, ${DURATION_SECONDS} s per
row after a 2 s warm-up. Load generator, service, PostgreSQL and Redis share the machine's cores, so
compare rows of one run rather than absolute numbers across machines. "Cache miss" is a second instance whose profiles expire 1 ms after being
cached, so every read takes the miss path (Redis GET, refill lock, double-check, PostgreSQL query,
store). Reads send one bearer token, as a client does for the token's 15 minutes: its ES256
signature is verified on first use and remembered (expiry is checked on every request). Logins rotate
over ${LOGIN_ACCOUNTS} accounts.

| endpoint | connections | req/s | p50 ms | p99 ms | requests | failed |
|---|---|---|---|---|---|---|
${rows}

Cache hit vs miss: ${ratio(hit, miss)} the throughput. Profile read (hit) vs the framework baseline:
${ratio(hit, baseline)}. Login is bounded by Argon2id by design (19 MiB, 2 passes per attempt, on
libuv's 4-thread pool): ${login?.requestsPerSecond ?? 'n/a'} logins/s on one instance.
${failed.length === 0 ? '' : `\n**Failed requests in: ${failed.map((r) => r.label).join(', ')}.**\n`}
Source: [services/users/bench/users.bench.ts](../services/users/bench/users.bench.ts).`,
);
if (failed.length > 0) process.exitCode = 1;
