import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from '../config';
import { type Cluster, helm, kubectlChecked } from './cluster';
import { buildImages } from './images';
import { RELEASE_NAME, RELEASE_NAMESPACE, REGISTRY } from './layout';

export const CHART_DIR = path.join(repoRoot, 'deploy', 'helm', 'bazaar');
/** The local cluster's values over the chart's defaults. */
export const LOCAL_VALUES = path.join(repoRoot, 'deploy', 'k8s', 'local.values.yaml');

/** The release's namespace: Pod Security "restricted" enforced, warned and audited. */
export function namespaceManifest(name: string): string {
  const labels: Record<string, string> = {};
  for (const mode of ['enforce', 'warn', 'audit']) {
    labels[`pod-security.kubernetes.io/${mode}`] = 'restricted';
    labels[`pod-security.kubernetes.io/${mode}-version`] = 'latest';
  }
  return JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
}

export async function ensureNamespace(cluster: Cluster, name: string): Promise<void> {
  await kubectlChecked(cluster, ['apply', '--server-side', '-f', '-'], namespaceManifest(name));
}

/**
 * `ADMIN_EMAIL`/`ADMIN_PASSWORD`, as `npm start` honours them: written to a values file only the
 * owner reads, for the time of one helm call (the chart puts them in a Secret, never in values).
 */
async function adminValues(cluster: Cluster): Promise<string[]> {
  const { ADMIN_EMAIL: email, ADMIN_PASSWORD: password } = cluster.config.passthrough;
  if (email === undefined || password === undefined) return [];
  const file = path.join(cluster.layout.state, 'admin.values.json');
  await writeFile(file, JSON.stringify({ admin: { email, password } }), { mode: 0o600 });
  return ['-f', file];
}

export interface InstallOptions {
  readonly namespace?: string;
  readonly release?: string;
  readonly extraArgs?: readonly string[];
  readonly timeout?: string;
}

/** helm upgrade --install of the chart with the images just pushed, waiting for it to be ready. */
export async function installRelease(
  cluster: Cluster,
  options: InstallOptions = {},
): Promise<void> {
  const namespace = options.namespace ?? RELEASE_NAMESPACE;
  await ensureNamespace(cluster, namespace);
  const admin = await adminValues(cluster);
  const started = Date.now();
  cluster.say(
    `helm upgrade --install ${options.release ?? RELEASE_NAME} (waiting for every Deployment)`,
  );
  try {
    const result = await helm(cluster, [
      'upgrade',
      '--install',
      options.release ?? RELEASE_NAME,
      CHART_DIR,
      '--namespace',
      namespace,
      '-f',
      LOCAL_VALUES,
      '-f',
      cluster.layout.imagesValues,
      ...admin,
      ...(options.extraArgs ?? []),
      '--wait',
      '--timeout',
      options.timeout ?? '10m',
    ]);
    if (result.code !== 0) {
      throw new Error(`helm upgrade --install failed:\n${result.stderr || result.stdout}`);
    }
  } finally {
    if (admin.length > 0) await rm(admin[1] ?? '', { force: true });
  }
  cluster.say(`release ready in ${Math.round((Date.now() - started) / 1000)} s`);
}

/** Builds and pushes every image (cached layers make a second run quick), then installs. */
export async function deployRelease(cluster: Cluster): Promise<void> {
  await buildImages({
    config: cluster.config,
    dockerHost: `unix://${cluster.layout.dockerSocket}`,
    registry: REGISTRY,
    push: true,
    say: cluster.say,
  });
  await installRelease(cluster);
}
