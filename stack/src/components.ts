import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chown, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { renderEdgeConfig } from '../edge/src/nginx-config';
import type { StackConfig } from './config';
import { tuneFerretdbBackend } from './ferretdb-backend';
import { repoRoot } from './config';
import {
  configureObservability,
  isObservabilityEnabledFor,
  logShippingUrl,
  observabilityComponents,
  otlpEndpoint,
  registerServiceComponents,
} from './observability';
import { portOf, type PortName } from './ports';
import { amqpProbe, httpProbe, mongoProbe, postgresProbe, redisProbe, type Probe } from './probes';
import { run, runChecked } from './run';
import type { StackSecrets } from './secrets';
import { ownedDir, writeOwnedFile, type ServiceUser } from './service-user';
import type { ToolName, ToolPaths } from './tools';

/** What a component needs to know about the stack it runs in. */
export interface StackContext {
  readonly config: StackConfig;
  readonly secrets: StackSecrets;
  readonly tools: Partial<ToolPaths>;
  /** Set when the stack runs as root: servers run as this unprivileged user. */
  readonly serviceUser: ServiceUser | undefined;
  readonly port: (name: PortName) => number;
  readonly dataDir: (name: string) => string;
}

/** One running copy of a component. Index 0 uses the component's fixed port; others get free ports. */
export interface Slot {
  readonly index: number;
  readonly port: number;
}

export interface Launch {
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Run as the stack's unprivileged service user (when the stack runs as root). */
  readonly asServiceUser: boolean;
}

/**
 * A declarative entry of the stack: adding a part of the system is adding one of these to
 * `componentSpecs`. The supervisor does the rest (order, readiness, restarts, status, scale).
 */
export interface ComponentSpec {
  readonly name: string;
  readonly kind: 'infra' | 'service';
  readonly dependsOn: readonly string[];
  readonly tools: readonly ToolName[];
  /** Services can run several instances (`npm run scale`); infrastructure runs one. */
  readonly scalable: boolean;
  readonly port: PortName;
  /** Idempotent one-time setup before the first launch: data dirs, config files, initdb. */
  readonly prepare?: (ctx: StackContext) => Promise<void>;
  readonly launch: (ctx: StackContext, slot: Slot) => Launch;
  readonly probe: (ctx: StackContext, slot: Slot) => Probe;
  /** The component's main endpoint, as `npm run status` shows it. */
  readonly url: (ctx: StackContext, slot: Slot) => string;
  /** Runs after the first instance is ready, on every start (must be idempotent). */
  readonly afterReady?: (ctx: StackContext) => Promise<void>;
  /** Cleans up what outlives the process group after a stop (e.g. a daemon it forked). */
  readonly afterStop?: (ctx: StackContext) => Promise<void>;
  readonly stopSignal: NodeJS.Signals;
  readonly stopTimeoutMs: number;
  /**
   * Restart an instance whose probe has failed for this long (a liveness check, like Kubernetes').
   * Only for parts whose probe tests the process itself: a service's `/readyz` also fails while a
   * dependency is down, and restarting it would not help.
   */
  readonly restartWhenUnhealthyForMs?: number;
  /** How long a start may take before the stack reports it as failed. */
  readonly startTimeoutMs: number;
  /** Changes when the component's code changes; `npm start` then restarts its instances. */
  readonly fingerprint?: () => string | undefined;
  /** True when the component cannot run yet (e.g. a service whose bundle is missing). */
  readonly isAvailable?: () => boolean;
  /**
   * Follows the instances of another component: after `npm run scale` changes them, `reconfigure`
   * gets the ports of its instances (to rewrite this component's config), then this component's
   * running instances receive `signal` (a graceful reload, e.g. nginx's SIGHUP).
   */
  readonly follows?: {
    readonly component: string;
    readonly reconfigure: (ctx: StackContext, ports: readonly number[]) => Promise<void>;
    readonly signal: NodeJS.Signals;
  };
}

/**
 * The local admin account of the users service: ADMIN_EMAIL/ADMIN_PASSWORD from `npm start`'s
 * environment in dev; on the test and bench stacks a generated one, so suites can act as admin.
 */
export function localAdmin(
  ctx: Pick<StackContext, 'config' | 'secrets'>,
): { email: string; password: string } | undefined {
  const { ADMIN_EMAIL: email, ADMIN_PASSWORD: password } = ctx.config.passthrough;
  if (email !== undefined && password !== undefined) return { email, password };
  if (ctx.config.profile === 'dev') return undefined;
  return { email: `admin@${ctx.config.profile}.bazaar.local`, password: ctx.secrets.adminPassword };
}

function adminEnv(ctx: StackContext): Record<string, string> {
  const admin = localAdmin(ctx);
  return admin === undefined ? {} : { ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password };
}

/** Connection URLs of the infrastructure, as services and tests receive them. */
export function infraUrls(ctx: Pick<StackContext, 'secrets' | 'port'>, database = 'bazaar') {
  const pgPassword = encodeURIComponent(ctx.secrets.postgresPassword);
  const mqPassword = encodeURIComponent(ctx.secrets.rabbitmqPassword);
  const redisPassword = encodeURIComponent(ctx.secrets.redisPassword);
  return {
    postgres: `postgres://bazaar:${pgPassword}@127.0.0.1:${ctx.port('postgres')}/${database}`,
    mongo: `mongodb://127.0.0.1:${ctx.port('mongo')}/`,
    redis: `redis://:${redisPassword}@127.0.0.1:${ctx.port('redis')}`,
    rabbitmq: `amqp://bazaar:${mqPassword}@127.0.0.1:${ctx.port('rabbitmq')}`,
    etcd: `http://127.0.0.1:${ctx.port('etcd')}`,
  };
}

function requireTool<K extends keyof ToolPaths>(ctx: StackContext, key: K): ToolPaths[K] {
  const value = ctx.tools[key];
  if (value === undefined) throw new Error(`${key} is not installed`);
  return value;
}

/** Databases the stack creates in its PostgreSQL cluster (one per owning service + FerretDB's). */
const POSTGRES_DATABASES = ['bazaar', 'ferretdb', 'users', 'payments', 'notifications'] as const;

const postgres: ComponentSpec = {
  name: 'postgres',
  kind: 'infra',
  dependsOn: [],
  tools: ['postgresql'],
  scalable: false,
  port: 'postgres',
  async prepare(ctx) {
    const dataDir = ctx.dataDir('postgres');
    const runDir = ctx.dataDir('postgres-run');
    await ownedDir(runDir, ctx.serviceUser);
    if (existsSync(path.join(dataDir, 'PG_VERSION'))) return;
    await ownedDir(dataDir, ctx.serviceUser);
    const pwfile = path.join(runDir, 'initdb.pw');
    await writeOwnedFile(pwfile, `${ctx.secrets.postgresPassword}\n`, ctx.serviceUser);
    try {
      await runChecked(
        path.join(requireTool(ctx, 'postgresBin'), 'initdb'),
        [
          '-D',
          dataDir,
          '-U',
          'bazaar',
          `--pwfile=${pwfile}`,
          '--auth=scram-sha-256',
          '-E',
          'UTF8',
          '--no-locale',
        ],
        ctx.serviceUser === undefined ? {} : { uid: ctx.serviceUser.uid, gid: ctx.serviceUser.gid },
      );
    } finally {
      await rm(pwfile, { force: true });
    }
  },
  launch: (ctx, slot) => ({
    command: path.join(requireTool(ctx, 'postgresBin'), 'postgres'),
    args: [
      '-D',
      ctx.dataDir('postgres'),
      '-p',
      String(slot.port),
      '-k',
      ctx.dataDir('postgres-run'),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=300',
      '-c',
      'shared_buffers=128MB',
      // The test profile trades power-loss durability for speed; a killed process still loses nothing.
      '-c',
      `fsync=${ctx.config.profile === 'test' ? 'off' : 'on'}`,
    ],
    asServiceUser: true,
  }),
  probe: (ctx) => postgresProbe(infraUrls(ctx, 'postgres').postgres),
  url: (ctx, slot) => `postgres://127.0.0.1:${slot.port}`,
  async afterReady(ctx) {
    const client = new pg.Client({ connectionString: infraUrls(ctx, 'postgres').postgres });
    await client.connect();
    try {
      const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database');
      const existing = new Set(rows.map((row) => row.datname));
      for (const database of POSTGRES_DATABASES) {
        if (!existing.has(database)) await client.query(`CREATE DATABASE "${database}"`);
      }
    } finally {
      await client.end();
    }
    const ferretdb = new pg.Client({ connectionString: infraUrls(ctx, 'ferretdb').postgres });
    await ferretdb.connect();
    try {
      await tuneFerretdbBackend(ferretdb, 'ferretdb');
    } finally {
      await ferretdb.end();
    }
  },
  stopSignal: 'SIGINT', // PostgreSQL's "fast" shutdown
  stopTimeoutMs: 15_000,
  startTimeoutMs: 60_000,
  restartWhenUnhealthyForMs: 30_000,
};

const mongo: ComponentSpec = {
  name: 'mongo',
  kind: 'infra',
  dependsOn: ['postgres'],
  tools: ['ferretdb'],
  scalable: false,
  port: 'mongo',
  launch: (ctx, slot) => ({
    command: requireTool(ctx, 'ferretdb'),
    args: [
      '--listen-addr',
      `127.0.0.1:${slot.port}`,
      '--handler',
      'postgresql',
      '--postgresql-url',
      `postgres://bazaar@127.0.0.1:${ctx.port('postgres')}/ferretdb`,
    ],
    // pgx reads the password from the environment, which keeps it out of `ps`.
    env: { PGPASSWORD: ctx.secrets.postgresPassword },
    asServiceUser: true,
  }),
  probe: (_ctx, slot) => mongoProbe(slot.port),
  url: (_ctx, slot) => `mongodb://127.0.0.1:${slot.port}`,
  stopSignal: 'SIGTERM',
  stopTimeoutMs: 10_000,
  startTimeoutMs: 30_000,
  restartWhenUnhealthyForMs: 30_000,
};

const redis: ComponentSpec = {
  name: 'redis',
  kind: 'infra',
  dependsOn: [],
  tools: ['redis'],
  scalable: false,
  port: 'redis',
  async prepare(ctx) {
    const dir = ctx.dataDir('redis');
    await ownedDir(dir, ctx.serviceUser);
    const conf = path.join(dir, 'redis.conf');
    // A config file rather than flags keeps the password out of `ps`.
    const lines = [
      `port ${ctx.port('redis')}`,
      'bind 127.0.0.1',
      'protected-mode yes',
      `requirepass ${ctx.secrets.redisPassword}`,
      'save ""',
      'appendonly no',
      `dir ${dir}`,
      'maxmemory 256mb',
      'maxmemory-policy volatile-lru',
    ];
    await writeOwnedFile(conf, `${lines.join('\n')}\n`, ctx.serviceUser);
  },
  launch: (ctx) => ({
    command: requireTool(ctx, 'redisServer'),
    args: [path.join(ctx.dataDir('redis'), 'redis.conf')],
    asServiceUser: true,
  }),
  probe: (ctx, slot) => redisProbe(slot.port, ctx.secrets.redisPassword),
  url: (_ctx, slot) => `redis://127.0.0.1:${slot.port}`,
  stopSignal: 'SIGTERM',
  stopTimeoutMs: 10_000,
  startTimeoutMs: 20_000,
  restartWhenUnhealthyForMs: 30_000,
};

const rabbitmq: ComponentSpec = {
  name: 'rabbitmq',
  kind: 'infra',
  dependsOn: [],
  tools: ['rabbitmq'],
  scalable: false,
  port: 'rabbitmq',
  async prepare(ctx) {
    const dir = ctx.dataDir('rabbitmq');
    for (const sub of ['', 'mnesia', 'log', 'home'])
      await ownedDir(path.join(dir, sub), ctx.serviceUser);
    const conf = [
      `listeners.tcp.default = 127.0.0.1:${ctx.port('rabbitmq')}`,
      'default_vhost = /',
      'default_user = bazaar',
      `default_pass = ${ctx.secrets.rabbitmqPassword}`,
      'loopback_users = none',
      'disk_free_limit.absolute = 200MB',
      'vm_memory_high_watermark.relative = 0.2',
    ];
    const files: [string, string][] = [
      ['rabbitmq.conf', `${conf.join('\n')}\n`],
      // No plugins: boots in seconds and uses less memory; the management API is not needed.
      ['enabled_plugins', '[].\n'],
    ];
    for (const [name, content] of files) {
      await writeOwnedFile(path.join(dir, name), content, ctx.serviceUser);
    }
  },
  launch: (ctx, slot) => {
    const dir = ctx.dataDir('rabbitmq');
    return {
      command: requireTool(ctx, 'rabbitmqServer'),
      args: [],
      env: {
        HOME: path.join(dir, 'home'),
        RABBITMQ_NODENAME: `bazaar-${slot.port}@localhost`,
        RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
        RABBITMQ_NODE_PORT: String(slot.port),
        RABBITMQ_DIST_PORT: String(ctx.port('rabbitmq-dist')),
        RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
        RABBITMQ_LOG_BASE: path.join(dir, 'log'),
        RABBITMQ_LOGS: '-',
        RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
        RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
        RABBITMQ_PID_FILE: path.join(dir, 'rabbitmq.pid'),
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
        ERL_EPMD_PORT: String(ctx.port('epmd')),
        ERL_EPMD_ADDRESS: '127.0.0.1',
      },
      asServiceUser: true,
    };
  },
  probe: (_ctx, slot) => amqpProbe(slot.port),
  // Erlang's port mapper daemonizes out of RabbitMQ's process group; stop it by its own port.
  afterStop: async (ctx) => {
    if (!existsSync('/usr/bin/epmd')) return;
    await run('/usr/bin/epmd', ['-kill'], {
      env: { ...ctx.config.childEnv, ERL_EPMD_PORT: String(ctx.port('epmd')) },
    });
  },
  url: (_ctx, slot) => `amqp://127.0.0.1:${slot.port}`,
  stopSignal: 'SIGTERM',
  stopTimeoutMs: 30_000,
  startTimeoutMs: 90_000,
  restartWhenUnhealthyForMs: 30_000,
};

const etcd: ComponentSpec = {
  name: 'etcd',
  kind: 'infra',
  dependsOn: [],
  tools: ['etcd'],
  scalable: false,
  port: 'etcd',
  prepare: (ctx) => ownedDir(ctx.dataDir('etcd'), ctx.serviceUser),
  launch: (ctx, slot) => {
    const client = `http://127.0.0.1:${slot.port}`;
    const peer = `http://127.0.0.1:${ctx.port('etcd-peer')}`;
    return {
      command: requireTool(ctx, 'etcd'),
      args: [
        '--name',
        'bazaar',
        '--data-dir',
        ctx.dataDir('etcd'),
        '--listen-client-urls',
        client,
        '--advertise-client-urls',
        client,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        `bazaar=${peer}`,
        '--log-level',
        'warn',
      ],
      asServiceUser: true,
    };
  },
  probe: (_ctx, slot) =>
    httpProbe(`http://127.0.0.1:${slot.port}/health`, (body) => body.includes('"true"')),
  url: (_ctx, slot) => `http://127.0.0.1:${slot.port}`,
  stopSignal: 'SIGTERM',
  stopTimeoutMs: 10_000,
  startTimeoutMs: 30_000,
  restartWhenUnhealthyForMs: 30_000,
};

/**
 * The gateway's rate limits (`${GATEWAY_RATE_*}` in gateway.yaml), shared with the edge's coarse
 * limit. The test and bench stacks get generous ones: their suites all come from 127.0.0.1.
 */
function gatewayLimits(ctx: StackContext): Record<string, string> {
  const isDev = ctx.config.profile === 'dev';
  return {
    GATEWAY_RATE_PER_SECOND: isDev ? '50' : '1000',
    GATEWAY_RATE_PER_MINUTE: isDev ? '1200' : '60000',
    GATEWAY_LOGIN_RATE_PER_MINUTE: isDev ? '10' : '600',
  };
}

/** Writes the edge's nginx.conf, its upstream block listing the gateway instances on `gatewayPorts`. */
async function writeEdgeConfig(ctx: StackContext, gatewayPorts: readonly number[]): Promise<void> {
  const prefix = ctx.dataDir('edge');
  const conf = renderEdgeConfig({
    declarativeYaml: readFileSync(
      path.join(repoRoot, 'services', 'gateway', 'gateway.yaml'),
      'utf8',
    ),
    prefix,
    listenPort: ctx.port('edge'),
    upstreams: gatewayPorts.map((port) => `127.0.0.1:${port}`),
    tls: {
      port: ctx.port('edge-tls'),
      certificate: path.join(prefix, 'tls', 'cert.pem'),
      key: path.join(prefix, 'tls', 'key.pem'),
    },
    vars: gatewayLimits(ctx),
  });
  await writeOwnedFile(path.join(prefix, 'nginx.conf'), conf, ctx.serviceUser);
}

/** The public entry: nginx in front of the gateway, its config generated from the gateway's file. */
const edge: ComponentSpec = {
  name: 'edge',
  kind: 'infra',
  dependsOn: ['gateway'],
  tools: ['nginx'],
  scalable: false,
  port: 'edge',
  async prepare(ctx) {
    const prefix = ctx.dataDir('edge');
    for (const sub of ['', 'temp', 'cache', 'tls']) {
      await ownedDir(path.join(prefix, sub), ctx.serviceUser);
    }
    const certificate = path.join(prefix, 'tls', 'cert.pem');
    const key = path.join(prefix, 'tls', 'key.pem');
    if (!existsSync(certificate)) {
      // A local self-signed certificate for the TLS listener; never leaves this machine.
      await runChecked('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '825',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        key,
        '-out',
        certificate,
      ]);
      if (ctx.serviceUser !== undefined) {
        await chown(key, ctx.serviceUser.uid, ctx.serviceUser.gid);
        await chown(certificate, ctx.serviceUser.uid, ctx.serviceUser.gid);
      }
    }
    await writeEdgeConfig(ctx, [ctx.port('gateway')]);
  },
  // `npm run scale -- gateway=N`: the upstream block lists every gateway instance, nginx reloads.
  follows: {
    component: 'gateway',
    reconfigure: (ctx, ports) =>
      writeEdgeConfig(ctx, ports.length > 0 ? ports : [ctx.port('gateway')]),
    signal: 'SIGHUP',
  },
  launch: (ctx) => {
    const prefix = ctx.dataDir('edge');
    return {
      command: requireTool(ctx, 'nginx'),
      args: [
        '-e',
        'stderr',
        '-p',
        prefix,
        '-c',
        path.join(prefix, 'nginx.conf'),
        '-g',
        'daemon off;',
      ],
      asServiceUser: true,
    };
  },
  probe: (_ctx, slot) => httpProbe(`http://127.0.0.1:${slot.port}/edge/healthz`),
  url: (_ctx, slot) => `http://127.0.0.1:${slot.port}`,
  stopSignal: 'SIGQUIT', // nginx's graceful shutdown: finish in-flight requests
  stopTimeoutMs: 10_000,
  startTimeoutMs: 20_000,
};

/** The SMTP sink: MailDev (npm) receives every email the notifications service sends. */
const mail: ComponentSpec = {
  name: 'mail',
  kind: 'infra',
  dependsOn: [],
  tools: [],
  scalable: false,
  port: 'mail',
  prepare: (ctx) => ownedDir(ctx.dataDir('mail'), ctx.serviceUser),
  launch: (ctx, slot) => ({
    command: process.execPath,
    args: [
      path.join(repoRoot, 'node_modules', 'maildev', 'dist', 'bin', 'maildev.js'),
      '--ip',
      '127.0.0.1',
      '--smtp',
      String(ctx.port('mail-smtp')),
      '--web-ip',
      '127.0.0.1',
      '--web',
      String(slot.port),
      '--mail-directory',
      ctx.dataDir('mail'),
      '--max-emails',
      '5000',
      '--silent',
    ],
    asServiceUser: true,
  }),
  probe: (_ctx, slot) => httpProbe(`http://127.0.0.1:${slot.port}/api/healthz`),
  url: (_ctx, slot) => `http://127.0.0.1:${slot.port}`,
  stopSignal: 'SIGTERM',
  stopTimeoutMs: 10_000,
  startTimeoutMs: 20_000,
  restartWhenUnhealthyForMs: 30_000,
};

/** The esbuild bundle a service runs from (see build.ts). */
export function serviceBundle(name: string): string {
  return path.join(repoRoot, 'services', name, 'dist', 'main.mjs');
}

interface ServiceOptions {
  readonly port: PortName;
  readonly dependsOn: readonly string[];
  readonly env?: (ctx: StackContext) => Record<string, string>;
}

/** A Bazaar service: one Node.js process per instance, healthy when `/readyz` answers 200. */
function service(name: string, options: ServiceOptions): ComponentSpec {
  return {
    name,
    kind: 'service',
    dependsOn: options.dependsOn,
    tools: [],
    scalable: true,
    port: options.port,
    launch: (ctx, slot) => ({
      command: process.execPath,
      args: ['--enable-source-maps', serviceBundle(name)],
      cwd: path.join(repoRoot, 'services', name),
      env: {
        NODE_ENV: ctx.config.profile === 'test' ? 'test' : 'development',
        HOST: '127.0.0.1',
        PORT: String(slot.port),
        SERVICE_INSTANCE_ID: `${name}-${slot.index + 1}`,
        LOG_LEVEL: 'info',
        // Every instance registers itself; the gateway finds them through the registry.
        ETCD_URL: infraUrls(ctx).etcd,
        // Services verify access tokens themselves, with the users service's published keys.
        JWKS_URL: `http://127.0.0.1:${ctx.port('users')}/.well-known/jwks.json`,
        // Traces to Jaeger (OTLP/HTTP) and logs to Elasticsearch (bulk API). Both are fire-and-forget
        // from the service's side: bounded queues, dropped (and counted) when the receiver is down.
        ...(isObservabilityEnabledFor(ctx)
          ? {
              OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint(ctx),
              LOG_ELASTICSEARCH_URL: logShippingUrl(ctx),
            }
          : {}),
        ...options.env?.(ctx),
      },
      asServiceUser: false,
    }),
    probe: (_ctx, slot) => httpProbe(`http://127.0.0.1:${slot.port}/readyz`),
    url: (_ctx, slot) => `http://127.0.0.1:${slot.port}`,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 15_000,
    startTimeoutMs: 30_000,
    fingerprint: () =>
      existsSync(serviceBundle(name))
        ? createHash('sha1')
            .update(readFileSync(serviceBundle(name)))
            .digest('hex')
        : undefined,
    isAvailable: () => existsSync(path.join(repoRoot, 'services', name, 'src', 'main.ts')),
  };
}

/** Every part of the local system, in no particular order (the supervisor orders by `dependsOn`). */
export const componentSpecs: readonly ComponentSpec[] = [
  ...observabilityComponents,
  postgres,
  mongo,
  redis,
  rabbitmq,
  etcd,
  mail,
  edge,
  service('psp-sandbox', { port: 'psp-sandbox', dependsOn: ['etcd'] }),
  service('gateway', {
    port: 'gateway',
    dependsOn: ['etcd', 'redis'],
    env: (ctx) => ({
      REDIS_URL: infraUrls(ctx).redis,
      GATEWAY_JWKS_URL: `http://127.0.0.1:${ctx.port('users')}/.well-known/jwks.json`,
      ...gatewayLimits(ctx),
    }),
  }),
  service('users', {
    port: 'users',
    dependsOn: ['postgres', 'redis', 'rabbitmq', 'etcd'],
    env: (ctx) => {
      const urls = infraUrls(ctx, 'users');
      return {
        DATABASE_URL: urls.postgres,
        REDIS_URL: urls.redis,
        RABBITMQ_URL: urls.rabbitmq,
        // The gateway, on loopback, appends the client's address to X-Forwarded-For.
        TRUSTED_PROXIES: '127.0.0.1',
        ...ctx.config.passthrough,
        ...adminEnv(ctx),
      };
    },
  }),
  service('orders', {
    port: 'orders',
    dependsOn: ['mongo', 'rabbitmq', 'etcd'],
    env: (ctx) => {
      const urls = infraUrls(ctx);
      return {
        MONGO_URL: `${urls.mongo}orders`,
        RABBITMQ_URL: urls.rabbitmq,
        REDIS_URL: urls.redis,
      };
    },
  }),
  service('payments', {
    port: 'payments',
    dependsOn: ['postgres', 'rabbitmq', 'etcd', 'psp-sandbox'],
    env: (ctx) => {
      const urls = infraUrls(ctx, 'payments');
      return {
        DATABASE_URL: urls.postgres,
        RABBITMQ_URL: urls.rabbitmq,
        PSP_URL: `http://127.0.0.1:${ctx.port('psp-sandbox')}`,
      };
    },
  }),
  service('notifications', {
    port: 'notifications',
    dependsOn: ['postgres', 'rabbitmq', 'etcd', 'mail'],
    env: (ctx) => {
      const urls = infraUrls(ctx, 'notifications');
      return {
        DATABASE_URL: urls.postgres,
        RABBITMQ_URL: urls.rabbitmq,
        SMTP_URL: `smtp://127.0.0.1:${ctx.port('mail-smtp')}`,
        MAIL_FROM: 'Bazaar <no-reply@bazaar.local>',
        OPERATORS_EMAIL: 'operators@bazaar.local',
        ALERT_WEBHOOK_TOKEN: ctx.secrets.alertWebhookToken,
        // Addresses of users it has not seen register (service token; the dev client outside production).
        USERS_URL: `http://127.0.0.1:${ctx.port('users')}`,
        // MailDev's API: an attempt interrupted by a crash is looked up there before resending (ADR 0005).
        MAIL_RECONCILE_URL: `http://127.0.0.1:${ctx.port('mail')}`,
      };
    },
  }),
  service('analytics', {
    port: 'analytics',
    dependsOn: ['rabbitmq', 'etcd'],
    env: (ctx) => ({
      RABBITMQ_URL: infraUrls(ctx).rabbitmq,
      WAREHOUSE_PATH: path.join(ctx.dataDir('analytics'), 'warehouse.duckdb'),
    }),
  }),
];

registerServiceComponents(componentSpecs);

export function createContext(
  config: StackConfig,
  secrets: StackSecrets,
  tools: Partial<ToolPaths>,
  serviceUser: ServiceUser | undefined,
): StackContext {
  configureObservability(config);
  return {
    config,
    secrets,
    tools,
    serviceUser,
    port: (name) => portOf(config, name),
    dataDir: (name) => path.join(config.stateDir, 'data', name),
  };
}
