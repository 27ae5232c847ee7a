import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { StackConfig } from './config';
import { repoRoot } from './config';
import { run, runChecked } from './run';

/** Pinned versions: apt gives Debian bookworm's release line (checked after install); Go modules are exact. */
export const FERRETDB_VERSION = 'v1.24.2';
/**
 * Jaeger v2 is built from the Go module proxy. The proxy this project can reach serves the module
 * `github.com/jaegertracing/jaeger` up to v1.76.0, the release that ships the v2.13.0 binary
 * (`cmd/jaeger`); newer pseudo-versions are refused there (see docs/adr/0006-observability-stack.md).
 */
export const JAEGER_MODULE_VERSION = 'v1.76.0';
export const JAEGER_VERSION = 'v2.13.0';
/** Elasticsearch's integ-test zip from Maven Central (9.x is not published there; 8.19 is). */
export const ELASTICSEARCH_VERSION = '8.19.21';

export type ToolName =
  | 'postgresql'
  | 'redis'
  | 'rabbitmq'
  | 'etcd'
  | 'nginx'
  | 'ferretdb'
  | 'prometheus'
  | 'alertmanager'
  | 'jaeger'
  | 'elasticsearch';

/** The parts that only observe the system: `BAZAAR_OBSERVABILITY=0` leaves them out. */
export const OBSERVABILITY_TOOLS: ReadonlySet<ToolName> = new Set([
  'prometheus',
  'alertmanager',
  'jaeger',
  'elasticsearch',
]);

/** False when the caller asked to run without Prometheus, Alertmanager, Jaeger and Elasticsearch. */
export function isObservabilityEnabled(env: Readonly<Record<string, string | undefined>>): boolean {
  return !['0', 'false', 'off', 'no'].includes((env.BAZAAR_OBSERVABILITY ?? '1').toLowerCase());
}

export interface ToolPaths {
  readonly postgresBin: string;
  readonly redisServer: string;
  readonly rabbitmqServer: string;
  readonly etcd: string;
  readonly nginx: string;
  readonly ferretdb: string;
  readonly prometheus: string;
  readonly promtool: string;
  readonly alertmanager: string;
  readonly amtool: string;
  readonly jaeger: string;
  /** The unpacked Elasticsearch distribution (bin/, lib/, config/, modules/). */
  readonly elasticsearchHome: string;
  /** A Java 21+ home to run Elasticsearch with. */
  readonly elasticsearchJavaHome: string;
}

export type Progress = (message: string) => void;

/** Which field of ToolPaths tells where each tool is. */
export const toolPathKey = {
  postgresql: 'postgresBin',
  redis: 'redisServer',
  rabbitmq: 'rabbitmqServer',
  etcd: 'etcd',
  nginx: 'nginx',
  ferretdb: 'ferretdb',
  prometheus: 'prometheus',
  alertmanager: 'alertmanager',
  jaeger: 'jaeger',
  elasticsearch: 'elasticsearchHome',
} as const satisfies Record<ToolName, keyof ToolPaths>;

interface AptTool {
  readonly package: string;
  readonly locate: () => string | undefined;
  /** The release line we support; what apt installs must match it. */
  readonly versionLine: RegExp;
}

function locatePostgresBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((entry) => existsSync(path.join(base, entry, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : path.join(base, versions[0], 'bin');
}

const fileIfExists = (file: string) => () => (existsSync(file) ? file : undefined);

type AptToolName = Exclude<ToolName, 'ferretdb' | 'jaeger' | 'elasticsearch'>;

const APT_TOOLS: Record<AptToolName, AptTool> = {
  postgresql: { package: 'postgresql', locate: locatePostgresBin, versionLine: /^1[5-7]\b/ },
  redis: {
    package: 'redis-server',
    locate: fileIfExists('/usr/bin/redis-server'),
    versionLine: /^5:7\./,
  },
  rabbitmq: {
    package: 'rabbitmq-server',
    locate: fileIfExists('/usr/lib/rabbitmq/bin/rabbitmq-server'),
    versionLine: /^3\.1[0-3]\./,
  },
  etcd: {
    package: 'etcd-server',
    locate: fileIfExists('/usr/bin/etcd'),
    versionLine: /^3\.[45]\./,
  },
  nginx: {
    package: 'nginx',
    locate: fileIfExists('/usr/sbin/nginx'),
    versionLine: /^1\.2[2-9]\./,
  },
  prometheus: {
    package: 'prometheus',
    locate: fileIfExists('/usr/bin/prometheus'),
    versionLine: /^2\.(4[2-9]|5\d)\./,
  },
  alertmanager: {
    package: 'prometheus-alertmanager',
    locate: fileIfExists('/usr/bin/prometheus-alertmanager'),
    versionLine: /^0\.2[5-9]\./,
  },
};

function isAptTool(tool: ToolName): tool is AptToolName {
  return tool in APT_TOOLS;
}

function ferretdbBinary(config: StackConfig): string {
  return path.join(config.toolsDir, `ferretdb-${FERRETDB_VERSION}`, 'ferretdb');
}

function jaegerBinary(config: StackConfig): string {
  return path.join(config.toolsDir, `jaeger-${JAEGER_VERSION}`, 'jaeger');
}

function elasticsearchHome(config: StackConfig): string {
  return path.join(config.toolsDir, `elasticsearch-${ELASTICSEARCH_VERSION}`);
}

/** The newest JDK of at least `minimum` under /usr/lib/jvm (Temurin or OpenJDK), by its `release` file. */
function locateJavaHome(minimum: number): string | undefined {
  const base = '/usr/lib/jvm';
  if (!existsSync(base)) return undefined;
  const candidates = readdirSync(base)
    .map((entry) => path.join(base, entry))
    .filter((home) => existsSync(path.join(home, 'bin', 'java')))
    .map((home) => {
      let major = 0;
      try {
        const release = readFileSync(path.join(home, 'release'), 'utf8');
        major = Number(/JAVA_VERSION="(\d+)/.exec(release)?.[1] ?? 0);
      } catch {
        major = Number(/(\d+)/.exec(path.basename(home))?.[1] ?? 0);
      }
      return { home, major };
    })
    .filter((candidate) => candidate.major >= minimum)
    .sort((a, b) => b.major - a.major);
  return candidates[0]?.home;
}

/** Where each tool is, or undefined for the ones that are missing. */
export function locateTools(config: StackConfig): Partial<ToolPaths> {
  const ferretdb = ferretdbBinary(config);
  const jaeger = jaegerBinary(config);
  const esHome = elasticsearchHome(config);
  const javaHome = locateJavaHome(21);
  const prometheus = APT_TOOLS.prometheus.locate();
  const alertmanager = APT_TOOLS.alertmanager.locate();
  const postgresBin = APT_TOOLS.postgresql.locate();
  const redisServer = APT_TOOLS.redis.locate();
  const rabbitmqServer = APT_TOOLS.rabbitmq.locate();
  const etcd = APT_TOOLS.etcd.locate();
  const nginx = APT_TOOLS.nginx.locate();
  return {
    ...(postgresBin === undefined ? {} : { postgresBin }),
    ...(redisServer === undefined ? {} : { redisServer }),
    ...(rabbitmqServer === undefined ? {} : { rabbitmqServer }),
    ...(etcd === undefined ? {} : { etcd }),
    ...(nginx === undefined ? {} : { nginx }),
    ...(existsSync(ferretdb) ? { ferretdb } : {}),
    ...(prometheus === undefined || !existsSync('/usr/bin/promtool')
      ? {}
      : { prometheus, promtool: '/usr/bin/promtool' }),
    ...(alertmanager === undefined || !existsSync('/usr/bin/amtool')
      ? {}
      : { alertmanager, amtool: '/usr/bin/amtool' }),
    ...(existsSync(jaeger) ? { jaeger } : {}),
    ...(existsSync(path.join(esHome, 'bin', 'elasticsearch')) && javaHome !== undefined
      ? { elasticsearchHome: esHome, elasticsearchJavaHome: javaHome }
      : {}),
  };
}

/** Installs Debian packages with apt-get (as root, or with passwordless sudo), services not started. */
export async function aptInstall(
  packages: readonly string[],
  config: StackConfig,
  progress: Progress,
) {
  const sudo = config.isRoot ? [] : ['sudo', '-n'];
  if (!config.isRoot && (await run('sudo', ['-n', 'true'])).code !== 0) {
    throw new Error(
      `Missing system packages. Install them once with:\n  sudo apt-get install -y ${packages.join(' ')}\nthen run the command again.`,
    );
  }
  const exec = (args: string[]) => {
    const [command, ...rest] = [...sudo, ...args];
    return run(command ?? 'apt-get', rest, {
      env: { ...config.hostEnv, DEBIAN_FRONTEND: 'noninteractive' },
    });
  };
  // Debian starts a package's system service on install; ours run on project-owned ports instead,
  // so forbid that for the duration of the install (invoke-rc.d honours policy-rc.d, exit 101 = deny).
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = config.isRoot && !existsSync(policy);
  if (ownPolicy) await writeFile(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const install = ['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...packages];
    progress(`apt-get install ${packages.join(' ')}`);
    let result = await exec(install);
    if (result.code !== 0) {
      progress('apt-get update (package lists are stale)');
      await exec(['apt-get', 'update', '-q']);
      result = await exec(install);
    }
    if (result.code !== 0) {
      throw new Error(
        `apt-get install failed:\n${result.stderr.split('\n').slice(-15).join('\n')}`,
      );
    }
  } finally {
    if (ownPolicy) await rm(policy, { force: true });
  }
  for (const pkg of packages) {
    const tool = Object.values(APT_TOOLS).find((candidate) => candidate.package === pkg);
    const version = (await run('dpkg-query', ['-W', '-f=${Version}', pkg])).stdout.trim();
    if (tool !== undefined && !tool.versionLine.test(version)) {
      throw new Error(
        `${pkg} ${version} is not a supported release (expected ${String(tool.versionLine)})`,
      );
    }
  }
}

async function buildFerretdb(config: StackConfig, progress: Progress) {
  const target = ferretdbBinary(config);
  const source = path.join(repoRoot, 'stack', 'ferretdb');
  if ((await run('go', ['version'])).code !== 0) {
    throw new Error(
      'Go is required to build FerretDB (apt-get install golang-go, or https://go.dev/dl).',
    );
  }
  await mkdir(path.dirname(target), { recursive: true });
  const partial = `${target}.partial`;
  progress(
    `building FerretDB ${FERRETDB_VERSION} from the Go module proxy (first run only: 1-5 min)`,
  );
  const started = Date.now();
  const ticker = setInterval(
    () => progress(`  still building FerretDB (${Math.round((Date.now() - started) / 1000)} s)`),
    15_000,
  );
  try {
    await runChecked('go', ['build', '-trimpath', '-o', partial, '.'], {
      cwd: source,
      env: { ...config.hostEnv, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' },
    });
  } finally {
    clearInterval(ticker);
  }
  await rename(partial, target);
  progress(`built FerretDB in ${Math.round((Date.now() - started) / 1000)} s`);
}

/** Runs a long build step, saying every 15 s that it is still running (CI logs show progress). */
export async function withTicker<T>(
  what: string,
  progress: Progress,
  work: () => Promise<T>,
): Promise<T> {
  const started = Date.now();
  const ticker = setInterval(
    () => progress(`  still ${what} (${Math.round((Date.now() - started) / 1000)} s)`),
    15_000,
  );
  try {
    return await work();
  } finally {
    clearInterval(ticker);
  }
}

/**
 * Builds Jaeger v2 with Go: `go mod download` of the pinned module, then `go build ./cmd/jaeger` in a
 * copy of it (its go.mod has `replace` directives, which `go install pkg@version` refuses). Module
 * and build caches live in the tools dir, so a CI machine that keeps it pays the 10-20 min once.
 */
async function buildJaeger(config: StackConfig, progress: Progress) {
  const target = jaegerBinary(config);
  if ((await run('go', ['version'])).code !== 0) {
    throw new Error(
      'Go is required to build Jaeger (apt-get install golang-go, or https://go.dev/dl).',
    );
  }
  const goRoot = path.join(config.toolsDir, 'go');
  const env = {
    ...config.hostEnv,
    GOPATH: goRoot,
    GOMODCACHE: path.join(goRoot, 'pkg', 'mod'),
    GOCACHE: path.join(goRoot, 'cache'),
    GOFLAGS: '-modcacherw',
    CGO_ENABLED: '0',
  };
  const module = `github.com/jaegertracing/jaeger@${JAEGER_MODULE_VERSION}`;
  progress(`downloading ${module} (Jaeger ${JAEGER_VERSION}) from the Go module proxy`);
  const download = await run('go', ['mod', 'download', '-json', module], { env });
  if (download.code !== 0) {
    throw new Error(`go mod download ${module} failed:\n${download.stdout}${download.stderr}`);
  }
  const moduleDir = (JSON.parse(download.stdout) as { Dir: string }).Dir;
  const source = path.join(goRoot, `src-jaeger-${JAEGER_MODULE_VERSION}`);
  await rm(source, { recursive: true, force: true });
  await runChecked('cp', ['-r', moduleDir, source]);
  await runChecked('chmod', ['-R', 'u+w', source]);
  await mkdir(path.dirname(target), { recursive: true });
  const partial = `${target}.partial`;
  progress(`building Jaeger ${JAEGER_VERSION} (first run only: 10-20 min on 2 cores)`);
  const started = Date.now();
  await withTicker('building Jaeger', progress, () =>
    runChecked('nice', ['-n', '10', 'go', 'build', '-trimpath', '-o', partial, './cmd/jaeger'], {
      cwd: source,
      env,
    }),
  );
  await rename(partial, target);
  await rm(source, { recursive: true, force: true });
  progress(`built Jaeger in ${Math.round((Date.now() - started) / 1000)} s`);
}

/** Fetches Elasticsearch's integ-test zip with Maven (cached in the tools dir) and unpacks it. */
async function installElasticsearch(config: StackConfig, progress: Progress) {
  if (locateJavaHome(21) === undefined) {
    throw new Error(
      'Elasticsearch needs a Java 21+ JDK under /usr/lib/jvm (e.g. apt-get install openjdk-21-jre-headless or a Temurin JDK).',
    );
  }
  if ((await run('mvn', ['--version'])).code !== 0) {
    throw new Error('Maven is required to fetch Elasticsearch (apt-get install maven).');
  }
  const home = elasticsearchHome(config);
  const download = path.join(config.toolsDir, `elasticsearch-${ELASTICSEARCH_VERSION}.download`);
  await rm(download, { recursive: true, force: true });
  await mkdir(download, { recursive: true });
  progress(`fetching Elasticsearch ${ELASTICSEARCH_VERSION} from Maven Central (first run only)`);
  await withTicker('fetching Elasticsearch', progress, () =>
    runChecked(
      'mvn',
      [
        '-B',
        '-q',
        `-Dmaven.repo.local=${path.join(config.toolsDir, 'm2')}`,
        'org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy',
        `-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ELASTICSEARCH_VERSION}:zip`,
        `-DoutputDirectory=${download}`,
      ],
      { env: { ...config.hostEnv } },
    ),
  );
  const zip = (await readdir(download)).find((file) => file.endsWith('.zip'));
  if (zip === undefined) throw new Error(`Maven fetched no zip into ${download}`);
  await runChecked('unzip', ['-q', path.join(download, zip), '-d', download]);
  const unpacked = (await readdir(download)).find((entry) => entry.startsWith('elasticsearch-'));
  if (unpacked === undefined) throw new Error(`no elasticsearch-* folder in ${zip}`);
  await rm(home, { recursive: true, force: true });
  await rename(path.join(download, unpacked), home);
  await rm(download, { recursive: true, force: true });
  progress(`installed Elasticsearch ${ELASTICSEARCH_VERSION} in ${home}`);
}

/**
 * Installs what `needed` lists and is missing, skipping what is already there, and returns where
 * every needed tool is. Safe to run again: a warm machine does no work here.
 */
export async function ensureTools(
  needed: ReadonlySet<ToolName>,
  config: StackConfig,
  progress: Progress,
): Promise<Partial<ToolPaths>> {
  const found = locateTools(config);
  const wanted = [...needed].filter(
    (tool) => isObservabilityEnabled(config.hostEnv) || !OBSERVABILITY_TOOLS.has(tool),
  );
  const missingApt = wanted
    .filter(isAptTool)
    .filter((tool) => APT_TOOLS[tool].locate() === undefined)
    .map((tool) => APT_TOOLS[tool].package);
  if (missingApt.length > 0) {
    if (config.skipInstall)
      throw new Error(`BAZAAR_SKIP_INSTALL=1 but missing: ${missingApt.join(' ')}`);
    await aptInstall(missingApt, config, progress);
  }
  if (wanted.includes('ferretdb') && found.ferretdb === undefined) {
    await buildFerretdb(config, progress);
  }
  const failures: string[] = [];
  // Observability parts are installed one by one, and a failure names the part and how to skip it,
  // so a machine where one cannot be installed still gets a clear message, not a half-told one.
  const optional: [ToolName, boolean, () => Promise<void>][] = [
    ['jaeger', found.jaeger === undefined, () => buildJaeger(config, progress)],
    [
      'elasticsearch',
      found.elasticsearchHome === undefined,
      () => installElasticsearch(config, progress),
    ],
  ];
  for (const [tool, isMissing, install] of optional) {
    if (!wanted.includes(tool) || !isMissing) continue;
    if (config.skipInstall) {
      // Installing is forbidden: the stack runs without this part (the daemon skips it and says so).
      progress(`${tool} is not installed and BAZAAR_SKIP_INSTALL=1: starting without it`);
      continue;
    }
    try {
      await install();
    } catch (error) {
      failures.push(`${tool}: ${(error as Error).message}`);
    }
  }
  if (failures.length > 0) {
    throw new Error(
      `could not install ${failures.length} observability part(s):\n  ${failures.join('\n  ')}\n` +
        'Fix the cause above, or start without observability: BAZAAR_OBSERVABILITY=0 npm start',
    );
  }
  return locateTools(config);
}
