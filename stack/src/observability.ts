import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cp, mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ComponentSpec, StackContext } from './components';
import { repoRoot } from './config';
import { fetchStatus } from './control';
import { httpProbe } from './probes';
import { runChecked } from './run';
import { ownedDir, writeOwnedFile } from './service-user';
import { isObservabilityEnabled, type ToolPaths } from './tools';

/**
 * The observability parts of the local stack: Prometheus (scrapes every service instance, evaluates
 * the rules in `observability/prometheus/rules`), Alertmanager (routes alerts to the notifications
 * service's webhook), Jaeger v2 (OTLP in, query API out) and Elasticsearch (logs). None of them is
 * a dependency of a service: services export to them without waiting for them.
 */

/** Where the repository keeps the observability artefacts (rules, templates, dashboards). */
export const observabilityDir = path.join(repoRoot, 'observability');

function requireTool<K extends keyof ToolPaths>(ctx: StackContext, key: K): ToolPaths[K] {
  const value = ctx.tools[key];
  if (value === undefined) throw new Error(`${key} is not installed`);
  return value;
}

let isEnabledInThisStack = true;
/** `BAZAAR_OBSERVABILITY=0` leaves these components out (read by the daemon at its start). */
const isEnabled = () => isEnabledInThisStack;

/** Called by `createContext`: the switch comes from the stack's environment (config.ts). */
export function configureObservability(config: StackContext['config']): void {
  isEnabledInThisStack = isObservabilityEnabled(config.hostEnv);
}

/** Whether services of this stack export traces and ship logs (not when observability is left out). */
export function isObservabilityEnabledFor(ctx: Pick<StackContext, 'config'>): boolean {
  return isObservabilityEnabled(ctx.config.hostEnv);
}

/** Short intervals on the test profile, so alert tests finish in a minute or two. */
function intervals(ctx: StackContext) {
  const isTest = ctx.config.profile === 'test';
  return {
    scrape: isTest ? '2s' : '10s',
    evaluation: isTest ? '2s' : '10s',
    groupWait: isTest ? '1s' : '30s',
    groupInterval: isTest ? '2s' : '1m',
    repeatInterval: isTest ? '1h' : '4h',
  };
}

// ---------------------------------------------------------------------------------------------
// Prometheus

/** The file Prometheus' file-based discovery reads the service instances from. */
export function scrapeTargetsFile(ctx: Pick<StackContext, 'dataDir'>): string {
  return path.join(ctx.dataDir('prometheus'), 'targets', 'services.json');
}

/** One file_sd group: a service instance and the labels every series scraped from it gets. */
export interface ScrapeTargetGroup {
  readonly targets: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

interface InstanceLike {
  readonly name: string;
  readonly instance: number;
  readonly port: number;
}

/**
 * The scrape targets for the instances the supervisor runs. A service that has run in this stack
 * but now has no instance (scaled to 0, being stopped) keeps its first port as a target, so that
 * `up == 0` says it is down instead of its series silently disappearing.
 */
export function scrapeTargets(
  instances: readonly InstanceLike[],
  services: ReadonlyMap<string, number>,
): ScrapeTargetGroup[] {
  const groups: ScrapeTargetGroup[] = [];
  for (const [service, firstPort] of [...services].sort(([a], [b]) => a.localeCompare(b))) {
    const running = instances
      .filter((instance) => instance.name === service)
      .sort((a, b) => a.instance - b.instance);
    const slots =
      running.length > 0
        ? running.map((i) => ({ index: i.instance, port: i.port }))
        : [{ index: 1, port: firstPort }];
    for (const slot of slots) {
      groups.push({
        targets: [`127.0.0.1:${slot.port}`],
        labels: { service, service_instance_id: `${service}-${slot.index}` },
      });
    }
  }
  return groups;
}

let targetWriter: NodeJS.Timeout | undefined;

/**
 * Keeps the file_sd file in step with the supervisor's instances: start, scale, restart and stop all
 * show up within a second. Runs inside the stack's daemon (Prometheus' `afterReady`) and asks the
 * daemon's own status endpoint, so it sees exactly what `npm run status` shows.
 */
function startTargetWriter(ctx: StackContext): void {
  if (targetWriter !== undefined) return;
  const file = scrapeTargetsFile(ctx);
  const serviceNames = new Set(serviceComponentNames());
  const seen = new Map<string, number>();
  let last = '';
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const report = await fetchStatus(ctx.config);
      if (report === undefined) return;
      const instances = report.components.filter((c) => serviceNames.has(c.name));
      for (const instance of instances) {
        if (!seen.has(instance.name)) seen.set(instance.name, ctx.port(portNameOf(instance.name)));
      }
      const content = `${JSON.stringify(scrapeTargets(instances, seen), null, 2)}\n`;
      if (content !== last) {
        // Written whole and renamed: Prometheus never reads half a file.
        await writeOwnedFile(`${file}.tmp`, content, ctx.serviceUser);
        await rename(`${file}.tmp`, file);
        last = content;
      }
    } catch {
      // The next tick tries again; a stale file only delays discovery by a second.
    } finally {
      busy = false;
    }
  };
  targetWriter = setInterval(() => void tick(), 1000);
  targetWriter.unref();
  void tick();
}

function stopTargetWriter(): void {
  if (targetWriter !== undefined) clearInterval(targetWriter);
  targetWriter = undefined;
}

let serviceComponents: ReadonlyMap<string, ComponentSpec['port']> = new Map();

/** Called by components.ts once the service specs exist (avoids an import cycle). */
export function registerServiceComponents(specs: readonly ComponentSpec[]): void {
  serviceComponents = new Map(
    specs.filter((spec) => spec.kind === 'service').map((spec) => [spec.name, spec.port]),
  );
}

function serviceComponentNames(): string[] {
  return [...serviceComponents.keys()];
}

function portNameOf(service: string): ComponentSpec['port'] {
  const port = serviceComponents.get(service);
  if (port === undefined) throw new Error(`unknown service ${service}`);
  return port;
}

/** Renders prometheus.yml for this stack (scrape intervals by profile, rules, Alertmanager). */
export function renderPrometheusConfig(ctx: StackContext): string {
  const every = intervals(ctx);
  const dir = ctx.dataDir('prometheus');
  const config = {
    global: {
      scrape_interval: every.scrape,
      scrape_timeout: every.scrape === '2s' ? '1500ms' : '5s',
      evaluation_interval: every.evaluation,
      external_labels: { stack: `bazaar-${ctx.config.profile}` },
    },
    rule_files: [path.join(dir, 'rules', '*.yml')],
    alerting: {
      alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${ctx.port('alertmanager')}`] }] }],
    },
    scrape_configs: [
      {
        job_name: 'bazaar',
        metrics_path: '/metrics',
        file_sd_configs: [{ files: [path.join(dir, 'targets', '*.json')], refresh_interval: '5s' }],
      },
      {
        job_name: 'prometheus',
        static_configs: [{ targets: [`127.0.0.1:${ctx.port('prometheus')}`] }],
      },
      {
        job_name: 'alertmanager',
        static_configs: [{ targets: [`127.0.0.1:${ctx.port('alertmanager')}`] }],
      },
    ],
  };
  // JSON is valid YAML; no YAML writer needed.
  return `${JSON.stringify(config, null, 2)}\n`;
}

const prometheus: ComponentSpec = {
  name: 'prometheus',
  kind: 'infra',
  dependsOn: [],
  tools: ['prometheus'],
  scalable: false,
  port: 'prometheus',
  async prepare(ctx) {
    const dir = ctx.dataDir('prometheus');
    for (const sub of ['', 'tsdb', 'rules', 'targets'])
      await ownedDir(path.join(dir, sub), ctx.serviceUser);
    await writeOwnedFile(
      path.join(dir, 'prometheus.yml'),
      renderPrometheusConfig(ctx),
      ctx.serviceUser,
    );
    // The rules are copied on every start, so a change in the repository is picked up by a restart.
    const rulesDir = path.join(observabilityDir, 'prometheus', 'rules');
    for (const file of readdirSync(rulesDir).filter((name) => name.endsWith('.yml'))) {
      await writeOwnedFile(
        path.join(dir, 'rules', file),
        readFileSync(path.join(rulesDir, file), 'utf8'),
        ctx.serviceUser,
      );
    }
    const targets = scrapeTargetsFile(ctx);
    if (!existsSync(targets)) await writeOwnedFile(targets, '[]\n', ctx.serviceUser);
  },
  launch: (ctx, slot) => {
    const dir = ctx.dataDir('prometheus');
    return {
      command: requireTool(ctx, 'prometheus'),
      args: [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'tsdb')}`,
        `--storage.tsdb.retention.time=${ctx.config.profile === 'dev' ? '15d' : '1d'}`,
        `--web.listen-address=127.0.0.1:${slot.port}`,
        // Without it the first notification of an alert waits a whole minute (the default).
        '--rules.alert.resend-delay=2s',
        '--log.level=warn',
      ],
      cwd: dir,
      asServiceUser: true,
    };
  },
  probe: (_ctx, slot) => httpProbe(`http://127.0.0.1:${slot.port}/-/ready`),
  url: (_ctx, slot) => `http://127.0.0.1:${slot.port}`,
  afterReady: (ctx) => Promise.resolve(startTargetWriter(ctx)),
  afterStop: () => Promise.resolve(stopTargetWriter()),
  stopSignal: 'SIGTERM',
  stopTimeoutMs: 15_000,
  startTimeoutMs: 60_000,
  restartWhenUnhealthyForMs: 30_000,
  isAvailable: isEnabled,
};

// ---------------------------------------------------------------------------------------------
// Alertmanager

/** Values substituted into `observability/alertmanager/alertmanager.yml`. */
export interface AlertmanagerValues {
  readonly webhookUrl: string;
  readonly tokenFile: string;
  readonly groupWait: string;
  readonly groupInterval: string;
  readonly repeatInterval: string;
}

/** Fills the `${NAME}` placeholders of the Alertmanager config template; an unknown one throws. */
export function renderAlertmanagerConfig(template: string, values: AlertmanagerValues): string {
  const byName: Record<string, string> = {
    NOTIFICATIONS_WEBHOOK_URL: values.webhookUrl,
    ALERT_WEBHOOK_TOKEN_FILE: values.tokenFile,
    GROUP_WAIT: values.groupWait,
    GROUP_INTERVAL: values.groupInterval,
    REPEAT_INTERVAL: values.repeatInterval,
  };
  return template.replace(/\$\{([A-Z_]+)\}/g, (_match, name: string) => {
    const value = byName[name];
    if (value === undefined)
      throw new Error(`unknown placeholder \${${name}} in the Alertmanager template`);
    return value;
  });
}

/** The notifications service's Alertmanager receiver (built by the notifications service). */
export function alertWebhookUrl(ctx: Pick<StackContext, 'port'>): string {
  return `http://127.0.0.1:${ctx.port('notifications')}/v1/alerts/alertmanager`;
}

const alertmanager: ComponentSpec = {
  name: 'alertmanager',
  kind: 'infra',
  dependsOn: [],
  tools: ['alertmanager'],
  scalable: false,
  port: 'alertmanager',
  async prepare(ctx) {
    const dir = ctx.dataDir('alertmanager');
    for (const sub of ['', 'data']) await ownedDir(path.join(dir, sub), ctx.serviceUser);
    // The bearer token stays out of the config file (and out of `ps`): Alertmanager reads it from here.
    const tokenFile = path.join(dir, 'webhook-token');
    await writeOwnedFile(tokenFile, ctx.secrets.alertWebhookToken, ctx.serviceUser);
    const every = intervals(ctx);
    const template = readFileSync(
      path.join(observabilityDir, 'alertmanager', 'alertmanager.yml'),
      'utf8',
    );
    const rendered = renderAlertmanagerConfig(template, {
      webhookUrl: alertWebhookUrl(ctx),
      tokenFile,
      groupWait: every.groupWait,
      groupInterval: every.groupInterval,
      repeatInterval: every.repeatInterval,
    });
    await writeOwnedFile(path.join(dir, 'alertmanager.yml'), rendered, ctx.serviceUser);
  },
  launch: (ctx, slot) => {
    const dir = ctx.dataDir('alertmanager');
    return {
      command: requireTool(ctx, 'alertmanager'),
      args: [
        `--config.file=${path.join(dir, 'alertmanager.yml')}`,
        `--storage.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${slot.port}`,
        // A single local instance: no gossip cluster (it would listen on 0.0.0.0:9094).
        '--cluster.listen-address=',
        '--log.level=warn',
      ],
      cwd: dir,
      asServiceUser: true,
    };
  },
  probe: (_ctx, slot) => httpProbe(`http://127.0.0.1:${slot.port}/-/ready`),
  url: (_ctx, slot) => `http://127.0.0.1:${slot.port}`,
  stopSignal: 'SIGTERM',
  stopTimeoutMs: 10_000,
  startTimeoutMs: 30_000,
  restartWhenUnhealthyForMs: 30_000,
  isAvailable: isEnabled,
};

// ---------------------------------------------------------------------------------------------
// Jaeger

/** Jaeger v2's own config: OTLP receivers and the query API on loopback, traces kept in memory. */
export function renderJaegerConfig(ctx: StackContext): string {
  const config = {
    service: {
      extensions: ['jaeger_storage', 'jaeger_query'],
      pipelines: {
        traces: {
          receivers: ['otlp'],
          processors: ['batch'],
          exporters: ['jaeger_storage_exporter'],
        },
      },
      telemetry: {
        resource: { 'service.name': 'jaeger' },
        metrics: { level: 'none' },
        logs: { level: 'warn' },
      },
    },
    extensions: {
      jaeger_query: {
        storage: { traces: 'memstore' },
        http: { endpoint: `127.0.0.1:${ctx.port('jaeger')}` },
        grpc: { endpoint: `127.0.0.1:${ctx.port('jaeger') + 1}` },
      },
      jaeger_storage: {
        backends: { memstore: { memory: { max_traces: 100_000 } } },
      },
    },
    receivers: {
      otlp: {
        protocols: {
          grpc: { endpoint: `127.0.0.1:${ctx.port('jaeger-otlp-grpc')}` },
          http: { endpoint: `127.0.0.1:${ctx.port('jaeger-otlp-http')}` },
        },
      },
    },
    processors: { batch: {} },
    exporters: { jaeger_storage_exporter: { trace_storage: 'memstore' } },
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** The OTLP/HTTP base URL services export traces to. */
export function otlpEndpoint(ctx: Pick<StackContext, 'port'>): string {
  return `http://127.0.0.1:${ctx.port('jaeger-otlp-http')}`;
}

const jaeger: ComponentSpec = {
  name: 'jaeger',
  kind: 'infra',
  dependsOn: [],
  tools: ['jaeger'],
  scalable: false,
  port: 'jaeger',
  async prepare(ctx) {
    const dir = ctx.dataDir('jaeger');
    await ownedDir(dir, ctx.serviceUser);
    await writeOwnedFile(path.join(dir, 'config.yaml'), renderJaegerConfig(ctx), ctx.serviceUser);
  },
  launch: (ctx) => ({
    command: requireTool(ctx, 'jaeger'),
    args: ['--config', `file:${path.join(ctx.dataDir('jaeger'), 'config.yaml')}`],
    cwd: ctx.dataDir('jaeger'),
    asServiceUser: true,
  }),
  probe: (_ctx, slot) => httpProbe(`http://127.0.0.1:${slot.port}/api/services`),
  url: (_ctx, slot) => `http://127.0.0.1:${slot.port}`,
  stopSignal: 'SIGTERM',
  stopTimeoutMs: 10_000,
  startTimeoutMs: 30_000,
  restartWhenUnhealthyForMs: 30_000,
  isAvailable: isEnabled,
};

// ---------------------------------------------------------------------------------------------
// Elasticsearch

/** Log indices are daily: `bazaar-logs-YYYY.MM.DD`; the stack deletes those older than this. */
export const LOG_RETENTION_DAYS = 7;

/** The index a log line written at `time` goes to. */
export function logIndexName(time: Date): string {
  const day = time.toISOString().slice(0, 10).replaceAll('-', '.');
  return `bazaar-logs-${day}`;
}

/** Indices of `names` older than the retention (by the date in their name), to delete. */
export function expiredLogIndices(
  names: readonly string[],
  now: Date,
  retentionDays = LOG_RETENTION_DAYS,
): string[] {
  const cutoff =
    Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) -
    retentionDays * 86_400_000;
  return names.filter((name) => {
    const match = /^bazaar-logs-(\d{4})\.(\d{2})\.(\d{2})$/.exec(name);
    if (match === null) return false;
    const [, y, m, d] = match;
    return Date.UTC(Number(y), Number(m) - 1, Number(d)) < cutoff;
  });
}

async function esRequest(ctx: StackContext, method: string, urlPath: string, body?: unknown) {
  const response = await fetch(`http://127.0.0.1:${ctx.port('elasticsearch')}${urlPath}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok)
    throw new Error(`Elasticsearch ${method} ${urlPath}: ${response.status} ${text}`);
  return JSON.parse(text) as unknown;
}

/** Installs the log index template and removes indices past the retention. Idempotent. */
async function configureLogIndices(ctx: StackContext): Promise<void> {
  const template = JSON.parse(
    readFileSync(path.join(observabilityDir, 'elasticsearch', 'index-template.json'), 'utf8'),
  ) as unknown;
  await esRequest(ctx, 'PUT', '/_index_template/bazaar-logs', template);
  const indices = (await esRequest(
    ctx,
    'GET',
    '/_cat/indices/bazaar-logs-*?format=json&h=index',
  )) as { index: string }[];
  for (const index of expiredLogIndices(
    indices.map((entry) => entry.index),
    new Date(),
  )) {
    await esRequest(ctx, 'DELETE', `/${index}`);
  }
}

let retentionTimer: NodeJS.Timeout | undefined;

const elasticsearch: ComponentSpec = {
  name: 'elasticsearch',
  kind: 'infra',
  dependsOn: [],
  tools: ['elasticsearch'],
  scalable: false,
  port: 'elasticsearch',
  async prepare(ctx) {
    const home = requireTool(ctx, 'elasticsearchHome');
    const dir = ctx.dataDir('elasticsearch');
    const config = path.join(dir, 'config');
    for (const sub of ['', 'data', 'logs', 'tmp'])
      await ownedDir(path.join(dir, sub), ctx.serviceUser);
    if (!existsSync(path.join(config, 'log4j2.properties'))) {
      await mkdir(config, { recursive: true });
      await cp(path.join(home, 'config'), config, { recursive: true });
    }
    const settings = [
      'cluster.name: bazaar',
      'node.name: bazaar-1',
      'discovery.type: single-node',
      'network.host: 127.0.0.1',
      `http.port: ${ctx.port('elasticsearch')}`,
      `transport.port: ${ctx.port('elasticsearch-transport')}`,
      `path.data: ${path.join(dir, 'data')}`,
      `path.logs: ${path.join(dir, 'logs')}`,
      // Loopback only and no credentials in a local stack; production clusters run with security on.
      'xpack.security.enabled: false',
      // A nearly full developer disk must not turn the log indices read-only.
      'cluster.routing.allocation.disk.threshold_enabled: false',
      'action.destructive_requires_name: true',
    ];
    await writeFile(path.join(config, 'elasticsearch.yml'), `${settings.join('\n')}\n`);
    await mkdir(path.join(config, 'jvm.options.d'), { recursive: true });
    await writeFile(path.join(config, 'jvm.options.d', 'heap.options'), '-Xms256m\n-Xmx512m\n');
    if (ctx.serviceUser !== undefined) {
      await runChecked('chown', ['-R', `${ctx.serviceUser.uid}:${ctx.serviceUser.gid}`, config]);
    }
  },
  launch: (ctx) => {
    const dir = ctx.dataDir('elasticsearch');
    return {
      command: path.join(requireTool(ctx, 'elasticsearchHome'), 'bin', 'elasticsearch'),
      args: [],
      env: {
        ES_PATH_CONF: path.join(dir, 'config'),
        ES_JAVA_HOME: requireTool(ctx, 'elasticsearchJavaHome'),
        ES_TMPDIR: path.join(dir, 'tmp'),
      },
      cwd: path.join(dir, 'logs'),
      asServiceUser: true,
    };
  },
  probe: (_ctx, slot) =>
    httpProbe(`http://127.0.0.1:${slot.port}/_cluster/health`, (body) => !body.includes('"red"')),
  url: (_ctx, slot) => `http://127.0.0.1:${slot.port}`,
  async afterReady(ctx) {
    await configureLogIndices(ctx);
    retentionTimer ??= setInterval(
      () => void configureLogIndices(ctx).catch(() => undefined),
      3_600_000,
    );
    retentionTimer.unref();
  },
  afterStop: () => {
    if (retentionTimer !== undefined) clearInterval(retentionTimer);
    retentionTimer = undefined;
    return Promise.resolve();
  },
  stopSignal: 'SIGTERM',
  stopTimeoutMs: 20_000,
  // A JVM: 20–40 s on an idle 2-core machine, over 2 min on a busy one.
  startTimeoutMs: 300_000,
  restartWhenUnhealthyForMs: 60_000,
  isAvailable: isEnabled,
};

/** The base URL services ship their logs to (bulk API). */
export function logShippingUrl(ctx: Pick<StackContext, 'port'>): string {
  return `http://127.0.0.1:${ctx.port('elasticsearch')}`;
}

export const observabilityComponents: readonly ComponentSpec[] = [
  prometheus,
  alertmanager,
  jaeger,
  elasticsearch,
];
