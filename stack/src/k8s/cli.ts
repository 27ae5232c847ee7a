import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { readStackConfig, repoRoot } from '../config';
import type { Progress } from '../tools';
import {
  clusterDown,
  clusterLeftovers,
  clusterOf,
  clusterUp,
  helm,
  kubectl,
  type Cluster,
} from './cluster';
import { deployRelease } from './deploy';
import { PUBLIC_URL, RELEASE_NAMESPACE } from './layout';
import { runInNetns } from './netns';

export const K8S_USAGE = `Usage: npm run k8s -- <command>
  up                 build what is missing, start the cluster and registry, build and push the
                     images, install the chart; returns when every Deployment is available
  deploy             build and push the images again and upgrade the release
  status [--json]    {"url","ready","deployments":[{"name","ready","replicas"}]}
  down               remove the cluster and everything it changed on the machine
  test               the cluster suite (lint, dry-run, install, saga, rolling update, scale, down)
  kubectl <args>     kubectl against the cluster (inside its network namespace)
  helm <args>        helm against the cluster`;

export interface DeploymentStatus {
  readonly name: string;
  readonly ready: number;
  readonly replicas: number;
}

export interface ClusterStatus {
  readonly url: string;
  readonly ready: boolean;
  readonly deployments: DeploymentStatus[];
}

interface DeploymentList {
  items: {
    metadata: { name: string };
    spec: { replicas?: number };
    status: { readyReplicas?: number; availableReplicas?: number };
  }[];
}

/** The status report from a `kubectl get deploy -o json` answer (undefined: no cluster). */
export function statusFrom(list: DeploymentList | undefined): ClusterStatus {
  const deployments = (list?.items ?? [])
    .map((item) => ({
      name: item.metadata.name,
      ready: item.status.readyReplicas ?? 0,
      replicas: item.spec.replicas ?? 0,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  return {
    url: PUBLIC_URL,
    ready:
      deployments.length > 0 && deployments.every((d) => d.ready >= d.replicas && d.replicas > 0),
    deployments,
  };
}

export async function clusterStatus(cluster: Cluster): Promise<ClusterStatus> {
  if (!existsSync(cluster.layout.adminKubeconfig)) return statusFrom(undefined);
  const result = await kubectl(cluster, [
    'get',
    'deployments',
    '-n',
    RELEASE_NAMESPACE,
    '-o',
    'json',
    '--request-timeout=5s',
  ]);
  return statusFrom(result.code === 0 ? (JSON.parse(result.stdout) as DeploymentList) : undefined);
}

function printStatus(status: ClusterStatus, say: Progress) {
  say(`public entry ${status.url}: ${status.ready ? 'ready' : 'not ready'}`);
  for (const d of status.deployments) say(`  ${d.name.padEnd(16)} ${d.ready}/${d.replicas}`);
}

const forwardScript = () => path.join(repoRoot, 'stack', 'dist', 'k8s-forward.mjs');

async function up(cluster: Cluster) {
  try {
    await clusterUp(cluster, forwardScript());
    await deployRelease(cluster);
  } catch (error) {
    // An interrupted `up` is torn down by its signal handler.
    if (cluster.aborted.signal.aborted) throw error;
    cluster.say(`up failed, tearing the cluster down: ${(error as Error).message}`);
    await clusterDown(cluster);
    throw error;
  }
  printStatus(await clusterStatus(cluster), cluster.say);
  cluster.say(`the cluster is up: ${PUBLIC_URL} (npm run k8s -- down removes it)`);
}

async function down(cluster: Cluster) {
  await clusterDown(cluster);
  const left = clusterLeftovers(cluster);
  if (left.length > 0) throw new Error(`left behind:\n  ${left.join('\n  ')}`);
  cluster.say('the cluster is down; nothing of it is left on the machine');
}

async function passthrough(cluster: Cluster, tool: 'kubectl' | 'helm', args: readonly string[]) {
  const result = tool === 'kubectl' ? await kubectl(cluster, args) : await helm(cluster, args);
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exitCode = result.code;
}

export async function k8sMain(argv: readonly string[], say: Progress): Promise<void> {
  const [command = 'help', ...rest] = argv;
  let config = readStackConfig('dev');
  if (command === 'test' && config.passthrough.ADMIN_EMAIL === undefined) {
    // The suite signs in as the admin that `up` creates, as the test stack generates its own.
    config = readStackConfig('dev', {
      ...config.hostEnv,
      ADMIN_EMAIL: `admin-${randomBytes(4).toString('hex')}@bazaar.local`,
      ADMIN_PASSWORD: randomBytes(18).toString('base64url'),
    });
  }
  const cluster = clusterOf(config, say);
  switch (command) {
    case 'up': {
      // Ctrl-C or a kill in the middle of `up` leaves no half-built cluster behind.
      const onSignal = (signal: NodeJS.Signals) => {
        say(`${signal}: tearing the cluster down`);
        cluster.aborted.abort();
        void clusterDown(cluster).finally(() => process.exit(130));
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        return await up(cluster);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    }
    case 'deploy':
      return deployRelease(cluster);
    case 'down':
      return down(cluster);
    case 'status': {
      const status = await clusterStatus(cluster);
      if (rest.includes('--json')) console.log(JSON.stringify(status));
      else printStatus(status, say);
      return;
    }
    case 'test': {
      const { clusterSuite } = await import('./suite');
      return clusterSuite(cluster, rest, { up, down });
    }
    case 'kubectl':
    case 'helm':
      return passthrough(cluster, command, rest);
    case 'exec': {
      // A command inside the cluster's namespace, e.g. `npm run k8s -- exec curl http://10.96.0.10`.
      const [program = 'true', ...args] = rest;
      const result = await runInNetns(program, args);
      process.stdout.write(result.stdout);
      process.stderr.write(result.stderr);
      process.exitCode = result.code;
      return;
    }
    default:
      console.log(K8S_USAGE);
      if (command !== 'help') process.exitCode = 2;
  }
}
