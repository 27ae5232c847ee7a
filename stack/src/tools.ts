import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { StackConfig } from './config';
import { repoRoot } from './config';
import { run, runChecked } from './run';

/** Pinned versions: apt gives Debian bookworm's release line (checked after install); Go modules are exact. */
export const FERRETDB_VERSION = 'v1.24.2';

export type ToolName = 'postgresql' | 'redis' | 'rabbitmq' | 'etcd' | 'nginx' | 'ferretdb';

export interface ToolPaths {
  readonly postgresBin: string;
  readonly redisServer: string;
  readonly rabbitmqServer: string;
  readonly etcd: string;
  readonly nginx: string;
  readonly ferretdb: string;
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

const APT_TOOLS: Record<Exclude<ToolName, 'ferretdb'>, AptTool> = {
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
};

function ferretdbBinary(config: StackConfig): string {
  return path.join(config.toolsDir, `ferretdb-${FERRETDB_VERSION}`, 'ferretdb');
}

/** Where each tool is, or undefined for the ones that are missing. */
export function locateTools(config: StackConfig): Partial<ToolPaths> {
  const ferretdb = ferretdbBinary(config);
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
  };
}

async function aptInstall(packages: readonly string[], config: StackConfig, progress: Progress) {
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
  const missingApt = [...needed]
    .filter((tool): tool is Exclude<ToolName, 'ferretdb'> => tool !== 'ferretdb')
    .filter((tool) => APT_TOOLS[tool].locate() === undefined)
    .map((tool) => APT_TOOLS[tool].package);
  if (missingApt.length > 0) {
    if (config.skipInstall)
      throw new Error(`BAZAAR_SKIP_INSTALL=1 but missing: ${missingApt.join(' ')}`);
    await aptInstall(missingApt, config, progress);
  }
  if (needed.has('ferretdb') && found.ferretdb === undefined) {
    await buildFerretdb(config, progress);
  }
  return locateTools(config);
}
