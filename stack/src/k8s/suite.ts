import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from '../config';
import { run, runChecked } from '../run';
import {
  type Cluster,
  KUBELET_SYSCTLS,
  CLUSTER_CGROUPS,
  clusterDown,
  clusterLeftovers,
  helmEnv,
} from './cluster';
import { CHART_DIR } from './deploy';
import { KUBERNETES_VALIDATE_VERSION, ensureClusterTools } from './tools';

/** What `down` must leave exactly as `up` found it. */
export interface MachineSnapshot {
  readonly netns: string[];
  readonly mounts: string[];
  readonly cgroups: string[];
  readonly sysctls: Record<string, string>;
}

/**
 * The sysctls a cluster could change, compared before `up` and after `down`: the kubelet's own,
 * and the network and memory ones (volatile counters excluded).
 */
export function comparableSysctl(key: string): boolean {
  if ((KUBELET_SYSCTLS as readonly string[]).includes(key)) return true;
  if (/(_count|_nr|-nr|-state|stat|random|ns_last_pid|\.tainted|hung_task)/.test(key)) return false;
  return /^(vm\.|kernel\.panic|kernel\.keys\.|net\.ipv4\.ip_forward|net\.bridge\.|net\.netfilter\.nf_conntrack_max|net\.ipv4\.conf\.(all|default)\.)/.test(
    key,
  );
}

export async function machineSnapshot(): Promise<MachineSnapshot> {
  const netns = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter(Boolean).sort();
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter(Boolean)
    .sort();
  const cgroups: string[] = [];
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    const dir = path.join('/sys/fs/cgroup', controller);
    try {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) cgroups.push(`${controller}/${entry.name}`);
      }
    } catch {
      // Not a hierarchy we can list.
    }
  }
  const sysctls: Record<string, string> = {};
  for (const line of (await run('sysctl', ['-a'])).stdout.split('\n')) {
    const [key, value] = line.split(' = ');
    if (key !== undefined && value !== undefined && comparableSysctl(key)) sysctls[key] = value;
  }
  return { netns, mounts, cgroups: cgroups.sort(), sysctls };
}

/** Every difference between two snapshots, one line each (empty: the machine is as it was). */
export function snapshotDiff(before: MachineSnapshot, after: MachineSnapshot): string[] {
  const lines: string[] = [];
  const sets = (name: string, a: readonly string[], b: readonly string[]) => {
    for (const item of b) if (!a.includes(item)) lines.push(`${name} added: ${item}`);
    for (const item of a) if (!b.includes(item)) lines.push(`${name} removed: ${item}`);
  };
  sets('network namespace', before.netns, after.netns);
  sets('mount', before.mounts, after.mounts);
  sets('cgroup', before.cgroups, after.cgroups);
  for (const [key, value] of Object.entries(before.sysctls)) {
    const now = after.sysctls[key];
    if (now !== undefined && now !== value) lines.push(`sysctl ${key}: ${value} → ${now}`);
  }
  return lines;
}

function vitest(project: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(
      path.join(repoRoot, 'node_modules', '.bin', 'vitest'),
      ['run', '--project', project],
      { cwd: repoRoot, stdio: 'inherit', env },
    );
    child.on('close', (code) => resolve(code ?? 1));
  });
}

/** Placeholder digests in the shape `npm run images -- --push` writes: what the offline checks render. */
const DIGESTS_VALUES = path.join(repoRoot, 'deploy', 'k8s', 'test', 'digests.values.yaml');

function renderChart(cluster: Cluster): Promise<string> {
  return runChecked(
    cluster.tools.helm,
    [
      'template',
      'bazaar',
      CHART_DIR,
      '--namespace',
      'bazaar',
      '-f',
      DIGESTS_VALUES,
      '--kube-version',
      '1.37.2',
    ],
    { env: helmEnv(cluster) },
  );
}

/**
 * Starts `npm run k8s -- up` as a user would, sends SIGINT once the apiserver is up (the cluster
 * is half built: daemons, mounts, cgroups and the namespace exist), and expects it to exit 130
 * having removed all of it.
 */
async function interruptedUp(cluster: Cluster): Promise<void> {
  const child = spawn(
    process.execPath,
    [path.join(repoRoot, 'stack', 'bin', 'bazaar.mjs'), 'k8s', 'up'],
    {
      cwd: repoRoot,
      env: cluster.config.hostEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  let interrupted = false;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
    if (!interrupted && output.includes('kube-apiserver ready')) {
      interrupted = true;
      cluster.say('the apiserver is up: SIGINT to npm run k8s -- up');
      child.kill('SIGINT');
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  if (!interrupted || code !== 130) {
    await clusterDown(cluster);
    throw new Error(`up was not interrupted as expected (exit ${code}):\n${output.slice(-2000)}`);
  }
  const left = clusterLeftovers(cluster);
  if (left.length > 0) {
    await clusterDown(cluster);
    throw new Error(`an interrupted up left behind:\n  ${left.join('\n  ')}`);
  }
  cluster.say('interrupted up exited 130 and left nothing behind');
}

interface Hooks {
  up(cluster: Cluster): Promise<void>;
  down(cluster: Cluster): Promise<void>;
}

/**
 * `npm run k8s -- test`: the chart's offline checks, then a real cluster from nothing, the live
 * suite against it, and `down`, after which the machine must be as it was before `up`.
 */
export async function clusterSuite(
  cluster: Cluster,
  argv: readonly string[],
  hooks: Hooks,
): Promise<void> {
  const { say } = cluster;
  const steps: [string, number][] = [];
  const step = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    say(`== ${name}`);
    try {
      return await work();
    } finally {
      steps.push([name, Date.now() - started]);
    }
  };
  const tools = await step('tools (built once, then cached)', () =>
    ensureClusterTools(cluster.config, say),
  );
  const env: NodeJS.ProcessEnv = {
    ...cluster.config.hostEnv,
    HELM: tools.helm,
  };
  await step(
    `strict schema check (kubernetes-validate ${KUBERNETES_VALIDATE_VERSION})`,
    async () => {
      const rendered = await renderChart(cluster);
      await mkdir(cluster.layout.cache, { recursive: true });
      const file = path.join(cluster.layout.cache, 'rendered.yaml');
      await writeFile(file, rendered);
      const result = await run(tools.kubernetesValidate, [
        '-k',
        KUBERNETES_VALIDATE_VERSION,
        '--strict',
        file,
      ]);
      if (result.code !== 0)
        throw new Error(`kubernetes-validate failed:\n${result.stdout}${result.stderr}`);
      const documents = rendered.split(/^---$/m).filter((doc) => /^kind:/m.test(doc)).length;
      say(
        `${documents} rendered objects valid against Kubernetes ${KUBERNETES_VALIDATE_VERSION} (strict)`,
      );
    },
  );
  await step('chart unit tests (helm lint --strict, policies, pod security)', async () => {
    if ((await vitest('k8s', env)) !== 0) throw new Error('the chart unit tests failed');
  });
  if (argv.includes('--offline')) return;

  const before = await machineSnapshot();
  let isDown = false;
  const teardown = async () => {
    if (isDown) return;
    isDown = true;
    await hooks.down(cluster);
  };
  // Ctrl-C or a kill of the suite still removes the cluster.
  const onSignal = (signal: NodeJS.Signals) => {
    say(`${signal}: tearing the cluster down`);
    void teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let failure: Error | undefined;
  try {
    await step('npm run k8s -- up (cluster, registry, images, chart)', () => hooks.up(cluster));
    await step('the live cluster suite', async () => {
      if ((await vitest('k8s-cluster', env)) !== 0)
        throw new Error('the live cluster suite failed');
    });
  } catch (error) {
    failure = error as Error;
  } finally {
    await step('npm run k8s -- down', teardown).catch((error: unknown) => {
      failure ??= error as Error;
    });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (failure === undefined) {
    await step('Ctrl-C in the middle of up tears the cluster down', () =>
      interruptedUp(cluster),
    ).catch((error: unknown) => {
      failure = error as Error;
    });
  }
  await step('the machine is as it was before up', async () => {
    const diff = snapshotDiff(before, await machineSnapshot());
    if (diff.length > 0) throw new Error(`down left the machine changed:\n  ${diff.join('\n  ')}`);
    for (const name of CLUSTER_CGROUPS) {
      if (existsSync(path.join('/sys/fs/cgroup', 'memory', name))) {
        throw new Error(`cgroup memory/${name} is left`);
      }
    }
    say('namespaces, mounts, cgroups and sysctls are as before up');
  }).catch((error: unknown) => {
    failure ??= error as Error;
  });
  say('step times:');
  for (const [name, ms] of steps) say(`  ${(ms / 1000).toFixed(1).padStart(7)} s  ${name}`);
  if (failure !== undefined) throw failure;
}
