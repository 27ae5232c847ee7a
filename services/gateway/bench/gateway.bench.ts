// `npm run bench -- gateway`: what the gateway and the edge cost per request. One upstream (a
// minimal Node HTTP server in its own process), measured four ways in one run, 127.0.0.1 only:
// nginx proxy_pass alone (baseline), the gateway with no plugins, the gateway with the full chain
// (CORS, size limit, JWT, Redis rate limiting), and edge (generated nginx) + full gateway.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createEtcdRegistry } from '@bazaar/registry';
import {
  describeMachine,
  freePort,
  groupCpuSeconds,
  processCpuSeconds,
  readStackConfig,
  repoRoot,
  writeBenchmarkSection,
} from '@bazaar/stack';
import { testStack, testStackStatus } from '@bazaar/testing';
import autocannon from 'autocannon';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { renderEdgeConfig } from '../../../stack/edge/src/nginx-config';

const DURATION_SECONDS = 8;
const WARMUP_SECONDS = 2;
const CONNECTIONS = 32;
const ROUNDS = 3;
const NGINX = '/usr/sbin/nginx';

const stack = readStackConfig(); // BAZAAR_PROFILE=bench, set by `npm run bench`
const urls = testStack();
const serviceDir = path.join(repoRoot, 'services', 'gateway');
const children: ChildProcess[] = [];
const work = await mkdtemp(path.join(tmpdir(), 'bazaar-gateway-bench-'));

async function waitFor(url: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer within 20 s`);
}

function launch(command: string, args: string[], env: Record<string, string> = {}, cwd = work) {
  const child = spawn(command, args, {
    cwd,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { PATH: stack.childEnv.PATH ?? '/usr/bin:/bin', ...env },
  });
  children.push(child);
  return child;
}

const upstreamSource = `
const http = require('node:http');
const body = JSON.stringify({ items: [{ id: 'prd_1', name: 'Mug', price: { amount: 1200, currency: 'USD' }, stock: 3 }], nextCursor: null });
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

// A reference, not a candidate: the least any Node proxy does per request (node:http server,
// undici pool, headers copied, small body read whole). Its ratio to nginx bounds what a gateway
// built on Node can reach on this machine before any framework, telemetry or plugin.
const minimalProxySource = `
const http = require('node:http');
const { Agent } = require(process.env.UNDICI_PATH);
const agent = new Agent({ keepAliveTimeout: 30000, connections: 256 });
const origin = process.env.UPSTREAM;
const dropped = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding']);
const copy = (headers) => {
  const out = {};
  for (const [name, value] of Object.entries(headers)) if (!dropped.has(name)) out[name] = value;
  return out;
};
http.createServer(async (req, res) => {
  try {
    const upstream = await agent.request({ origin, path: req.url, method: req.method, headers: copy(req.headers) });
    const body = Buffer.from(await upstream.body.arrayBuffer());
    res.writeHead(upstream.statusCode, copy(upstream.headers));
    res.end(body);
  } catch {
    res.writeHead(502).end();
  }
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

interface Measurement {
  readonly label: string;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  /**
   * CPU (user + system) per request of the processes whose cost the path measures, in µs, from
   * /proc; undefined when not taken.
   */
  readonly cpuMicrosPerRequest: number | undefined;
}

/** The CPU seconds used so far by the given processes (a getter per process). */
type CpuMeter = () => number;

async function measure(
  label: string,
  url: string,
  headers: Record<string, string> = {},
  cpuMeters: readonly CpuMeter[] = [],
): Promise<Measurement> {
  await autocannon({ url, connections: CONNECTIONS, duration: WARMUP_SECONDS, headers });
  const cpuSeconds = () => cpuMeters.reduce((sum, meter) => sum + meter(), 0);
  const cpuBefore = cpuSeconds();
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION_SECONDS,
    headers,
  });
  const cpuUsed = cpuSeconds() - cpuBefore;
  const measurement = {
    label,
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx + result.errors + result.timeouts,
    cpuMicrosPerRequest:
      cpuMeters.length === 0 ? undefined : (cpuUsed * 1e6) / Math.max(1, result.requests.total),
  };
  const cpuText =
    measurement.cpuMicrosPerRequest === undefined
      ? ''
      : `, ${measurement.cpuMicrosPerRequest.toFixed(0)} µs CPU per request`;
  console.log(
    `bench gateway: ${label}: ${measurement.requestsPerSecond} req/s, p50 ${measurement.p50Ms} ms, p99 ${measurement.p99Ms} ms, ${measurement.non2xx} failed${cpuText}`,
  );
  return measurement;
}

async function startNginx(name: string, conf: string): Promise<void> {
  const prefix = path.join(work, name);
  await mkdir(path.join(prefix, 'temp'), { recursive: true });
  await mkdir(path.join(prefix, 'cache'), { recursive: true });
  await writeFile(path.join(prefix, 'nginx.conf'), conf);
  const globals = process.getuid?.() === 0 ? 'daemon off; user root;' : 'daemon off;';
  launch(NGINX, [
    '-e',
    'stderr',
    '-p',
    prefix,
    '-c',
    path.join(prefix, 'nginx.conf'),
    '-g',
    globals,
  ]);
}

async function startGateway(name: string, yaml: string, env: Record<string, string>) {
  const port = await freePort();
  const file = path.join(work, `${name}.yaml`);
  await writeFile(file, yaml);
  const bundle = path.join(serviceDir, 'dist', 'main.mjs');
  const args = existsSync(bundle) ? [bundle] : ['--import', 'tsx', 'src/main.ts'];
  const gateway = launch(
    process.execPath,
    args,
    {
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      SERVICE_INSTANCE_ID: name,
      LOG_LEVEL: 'warn',
      GATEWAY_CONFIG_FILE: file,
      ETCD_URL: urls.etcd,
      REDIS_URL: urls.redis,
      ...env,
    },
    serviceDir,
  );
  await waitFor(`http://127.0.0.1:${port}/readyz`);
  return { port, pid: gateway.pid };
}

const registry = createEtcdRegistry({ url: urls.etcd });
try {
  if (!existsSync(NGINX))
    throw new Error('nginx is not installed (the stack installs it: npm start)');
  const upstreamPort = await freePort();
  launch(process.execPath, ['-e', upstreamSource], { PORT: String(upstreamPort) });
  await waitFor(`http://127.0.0.1:${upstreamPort}/`);
  const service = `bench-upstream-${randomUUID().slice(0, 8)}`;
  await registry.register({
    service,
    id: `${service}-1`,
    address: `http://127.0.0.1:${upstreamPort}`,
    healthUrl: `http://127.0.0.1:${upstreamPort}/`,
  });

  // A JWKS the full chain verifies tokens against (fetched once, then cached by the gateway).
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256', use: 'sig' };
  const jwks = http.createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ keys: [jwk] }));
  });
  const jwksPort = await freePort();
  await new Promise<void>((resolve) => jwks.listen(jwksPort, '127.0.0.1', resolve));
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'bench' })
    .setSubject('usr_bench')
    .setIssuer('bazaar-users')
    .setAudience('bazaar-api')
    .setExpirationTime('1h')
    .sign(privateKey);

  const route = (plugins: string) => `
_format_version: '3.0'
${plugins}
services:
  - name: catalog
    host: ${service}
    routes:
      - name: items-${randomUUID().slice(0, 8)}
        paths: [/v1/items]
        methods: [GET]
        strip_path: false
`;
  const bare = route('');
  const full = route(`plugins:
  - name: cors
  - name: request-size-limiting
    config: { allowed_payload_size: 1, size_unit: megabytes }
  - name: rate-limiting
    config: { second: 1000000, minute: 60000000, limit_by: consumer }
  - name: jwt
    config:
      jwks_uri: 'http://127.0.0.1:${jwksPort}/jwks'
      issuer: bazaar-users
      audiences: [bazaar-api]
      algorithms: [ES256]`);
  const minimalPort = await freePort();
  launch(process.execPath, ['-e', minimalProxySource], {
    PORT: String(minimalPort),
    UPSTREAM: `http://127.0.0.1:${upstreamPort}`,
    UNDICI_PATH: createRequire(path.join(serviceDir, 'package.json')).resolve('undici'),
  });
  await waitFor(`http://127.0.0.1:${minimalPort}/v1/items`);
  const bareGateway = await startGateway('gateway-bench-bare', bare, {});
  const fullGateway = await startGateway('gateway-bench-full', full, {});
  const fullPort = fullGateway.port;

  const nginxPort = await freePort();
  await startNginx(
    'baseline',
    `pid ${work}/baseline/nginx.pid;
error_log stderr warn;
worker_processes 2;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${work}/baseline/temp;
  proxy_temp_path ${work}/baseline/temp;
  upstream upstream { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${nginxPort};
    location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://upstream; }
  }
}
`,
  );
  await waitFor(`http://127.0.0.1:${nginxPort}/v1/items`);
  // The edge as the stack generates it, in front of the given gateway instances.
  const startEdge = async (name: string, gatewayPorts: readonly number[]) => {
    const port = await freePort();
    await startNginx(
      name,
      renderEdgeConfig({
        declarativeYaml: full,
        prefix: path.join(work, name),
        listenPort: port,
        upstreams: gatewayPorts.map((gatewayPort) => `127.0.0.1:${gatewayPort}`),
      }),
    );
    await waitFor(`http://127.0.0.1:${port}/edge/healthz`);
    return port;
  };
  const edgePort = await startEdge('edge', [fullPort]);
  // The deployed shape on this machine: the edge spreading over one gateway instance per core.
  const secondFull = await startGateway('gateway-bench-full-2', full, {});
  const edgePairPort = await startEdge('edge-pair', [fullPort, secondFull.port]);

  // The chain's CPU: the gateway process, and for the full chain also Redis (the rate limiter's
  // scripts run there; the bench stack's idle services barely use it meanwhile).
  const redisPid = (await testStackStatus()).find((component) => component.name === 'redis')?.pid;
  const meterOf = (
    what: string,
    pid: number | null | undefined,
    read: (pid: number) => number,
  ): CpuMeter => {
    if (pid === undefined || pid === null) throw new Error(`${what} has no pid`);
    return () => read(pid);
  };
  const processMeter = (pid: number | undefined) => meterOf('a gateway', pid, processCpuSeconds);
  const auth = { authorization: `Bearer ${token}`, origin: 'https://shop.example' };
  const paths: readonly [string, string, Record<string, string>?, CpuMeter[]?][] = [
    ['nginx proxy_pass (baseline)', `http://127.0.0.1:${nginxPort}/v1/items`],
    [
      'reference: minimal Node proxy (node:http + undici)',
      `http://127.0.0.1:${minimalPort}/v1/items`,
    ],
    [
      'gateway, no plugins',
      `http://127.0.0.1:${bareGateway.port}/v1/items`,
      {},
      [processMeter(bareGateway.pid)],
    ],
    [
      'gateway, full chain',
      `http://127.0.0.1:${fullPort}/v1/items`,
      auth,
      [processMeter(fullGateway.pid), meterOf('redis', redisPid, (pgid) => groupCpuSeconds(pgid))],
    ],
    ['edge + gateway (full chain)', `http://127.0.0.1:${edgePort}/v1/items`, auth],
    ['edge + 2 gateway instances (full chain)', `http://127.0.0.1:${edgePairPort}/v1/items`, auth],
  ];
  const loadAtStart = loadavg()[0] ?? 0;
  // Rounds alternate over every path, so a neighbour's burst of load hits them all alike; each
  // path's median round is reported.
  const rounds: Measurement[][] = paths.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, [label, url, headers, cpuMeters]] of paths.entries()) {
      rounds[index]?.push(await measure(label, url, headers, cpuMeters));
    }
  }
  const results = rounds.map((measurements) => {
    const sorted = [...measurements].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond);
    const median = sorted[Math.floor(sorted.length / 2)];
    if (median === undefined) throw new Error('no measurement');
    return median;
  });
  const [baseline] = results;
  if (baseline === undefined) throw new Error('no baseline');
  const rows = results.map(
    (r) =>
      `| ${r.label} | ${r.requestsPerSecond} | ${(r.requestsPerSecond / baseline.requestsPerSecond).toFixed(2)} | ${r.p50Ms} | ${r.p99Ms} | ${r.p50Ms - baseline.p50Ms} | ${r.p99Ms - baseline.p99Ms} | ${r.non2xx} |`,
  );
  // Goals are judged per round (paths of one round ran back to back, under the same load), then
  // summarised; rounds that disagree make the verdict inconclusive rather than a lucky "met".
  const perRound = (ratio: (round: readonly Measurement[]) => number) =>
    Array.from({ length: ROUNDS }, (_, round) =>
      ratio(rounds.map((measurements) => measurements[round] as Measurement)),
    ).sort((a, b) => a - b);
  const rps = (round: readonly Measurement[], index: number) =>
    round[index]?.requestsPerSecond ?? Number.NaN;
  const fullRatios = perRound((round) => rps(round, 3) / rps(round, 0));
  const chainCosts = perRound((round) => 1 - rps(round, 3) / rps(round, 2));
  const cpuOf = (round: readonly Measurement[], index: number) =>
    round[index]?.cpuMicrosPerRequest ?? Number.NaN;
  const chainCpuCosts = perRound((round) => cpuOf(round, 3) / cpuOf(round, 2) - 1);
  const micros = (value: number) => `${value.toFixed(0)} µs`;
  const bareCpu = perRound((round) => cpuOf(round, 2));
  const fullCpu = perRound((round) => cpuOf(round, 3));
  const minimalRatios = perRound((round) => rps(round, 1) / rps(round, 0));
  const summary = (values: readonly number[], format: (value: number) => string) =>
    `${format(values[Math.floor(values.length / 2)] ?? Number.NaN)} (rounds ${values.map(format).join(', ')})`;
  const verdict = (values: readonly number[], isMet: (value: number) => boolean) =>
    values.every(isMet)
      ? 'met'
      : values.some(isMet)
        ? '**inconclusive**: the rounds disagree'
        : '**not met**';
  const times = (value: number) => `${value.toFixed(2)} ×`;
  const percent = (value: number) => `${(value * 100).toFixed(0)} %`;
  writeBenchmarkSection(
    'gateway',
    `## Gateway and edge overhead

\`npm run bench -- gateway\` (services/gateway/bench/gateway.bench.ts). One upstream (a minimal
Node HTTP server, its own process, ~200-byte JSON), autocannon with ${CONNECTIONS} connections for
${DURATION_SECONDS} s after a ${WARMUP_SECONDS} s warm-up, GET /v1/items (a route the edge does not
cache), 127.0.0.1 only. Everything shares the machine's cores with the load generator, so read the
ratios, not the absolute numbers. "Full chain" = CORS, request size limit, JWT (ES256, JWKS cached;
one token, so its signature is verified once and remembered until it expires), Redis GCRA rate
limiting (limit never reached; the checks of one moment go as one script call), registry discovery, trace context; added latency is
relative to the nginx baseline.

${describeMachine()}

Load average when the run began: ${loadAtStart.toFixed(1)}. ${ROUNDS} rounds over all paths; each row is
its path's median round.

| Path | req/s | × baseline | p50 ms | p99 ms | added p50 ms | added p99 ms | failed |
| --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Per round (median first):
- Full-chain gateway vs nginx: ${summary(fullRatios, times)}; goal ≥ 0.5 ×: ${verdict(fullRatios, (value) => value >= 0.5)}.
- Plugin chain cost (full chain vs no plugins): ${summary(chainCosts, percent)}; goal ≤ 10 %: ${verdict(chainCosts, (value) => value <= 0.1)}.
- The same in CPU per request (user + system from /proc: the gateway process; for the full chain also Redis,
  where the rate limiter's scripts run), which leaves out the load generator and the upstream: no plugins ${summary(bareCpu, micros)}, full chain
  ${summary(fullCpu, micros)}; chain cost ${summary(chainCpuCosts, percent)}; goal ≤ 10 %: ${verdict(chainCpuCosts, (value) => value <= 0.1)}.
- Reference minimal Node proxy vs nginx: ${summary(minimalRatios, times)}: the most a single Node process
  proxies here before any framework, telemetry, logging or plugin.
`,
  );
  await new Promise<void>((resolve) => jwks.close(() => resolve()));
} finally {
  for (const child of children.reverse()) child.kill('SIGTERM');
  await sleep(1000);
  await registry.close();
  await rm(work, { recursive: true, force: true });
}
