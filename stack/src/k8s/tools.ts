import { existsSync } from 'node:fs';
import { mkdir, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { StackConfig } from '../config';
import { repoRoot } from '../config';
import { run, runChecked } from '../run';
import { aptInstall, withTicker, type Progress } from '../tools';

/**
 * Pinned versions of the local cluster (K8S.md): Kubernetes 1.38+ needs containerd 2, which
 * Debian 12 does not have, so the line is 1.37.
 */
export const KUBERNETES_VERSION = 'v1.37.2';
export const HELM_VERSION = 'v4.3.2';
export const CRICTL_VERSION = 'v1.37.0';
export const COREDNS_VERSION = 'v1.15.0';
export const KUBERNETES_VALIDATE_VERSION = '1.37.0';
/** Bumped whenever pause.c changes: the tools dir keys the binary by it. */
export const PAUSE_VERSION = '1';

/** Debian packages the cluster runs on: engine, runtime, CNI plugins, registry, etcd, rootfs builder. */
export const CLUSTER_PACKAGES = [
  'docker.io',
  'containerd',
  'runc',
  'docker-registry',
  'debootstrap',
  'containernetworking-plugins',
  'iptables',
  'conntrack',
  'etcd-server',
  'openssl',
] as const;

/** The multi-call binary's components; each is a symlink to `kube` in the same folder. */
export const KUBE_COMPONENTS = [
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubelet',
  'kube-proxy',
  'kubectl',
] as const;

export interface ClusterTools {
  readonly kubeDir: string;
  readonly kubectl: string;
  readonly helm: string;
  readonly crictl: string;
  readonly coredns: string;
  readonly pause: string;
  readonly kubernetesValidate: string;
}

export function clusterToolPaths(config: StackConfig): ClusterTools {
  const dir = (name: string, version: string) => path.join(config.toolsDir, `${name}-${version}`);
  const kubeDir = dir('kube', KUBERNETES_VERSION);
  return {
    kubeDir,
    kubectl: path.join(kubeDir, 'kubectl'),
    helm: path.join(dir('helm', HELM_VERSION), 'helm'),
    crictl: path.join(dir('crictl', CRICTL_VERSION), 'crictl'),
    coredns: path.join(dir('coredns', COREDNS_VERSION), 'coredns'),
    pause: path.join(dir('pause', PAUSE_VERSION), 'pause'),
    kubernetesValidate: path.join(
      dir('kubernetes-validate', KUBERNETES_VALIDATE_VERSION),
      'bin',
      'kubernetes-validate',
    ),
  };
}

/** The version the kube binaries report (they would say v0.0.0 without it, and the apiserver's
 * compatibility version is derived from it). */
function kubeLdflags(): string {
  const [major, minor] = KUBERNETES_VERSION.slice(1).split('.');
  const vars: string[] = [];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    vars.push(
      `-X ${pkg}.gitVersion=${KUBERNETES_VERSION}`,
      `-X ${pkg}.gitMajor=${major}`,
      `-X ${pkg}.gitMinor=${minor}`,
    );
  }
  vars.push('-X k8s.io/component-base/version.gitTreeState=clean');
  return ['-s', '-w', ...vars].join(' ');
}

const toolsSource = (name: string) => path.join(repoRoot, 'deploy', 'k8s', 'tools', name);

/** Go's own caches (module and build) are shared with every other Go build of the machine. */
function goEnv(config: StackConfig): NodeJS.ProcessEnv {
  return { ...config.hostEnv, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' };
}

async function goBuild(
  config: StackConfig,
  progress: Progress,
  what: string,
  target: string,
  args: readonly string[],
  cwd: string,
): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true });
  const started = Date.now();
  progress(`building ${what} with Go (cold: minutes; cached: seconds)`);
  await withTicker(`building ${what}`, progress, () =>
    runChecked('nice', ['-n', '10', 'go', ...args], { cwd, env: goEnv(config) }),
  );
  progress(`built ${what} in ${Math.round((Date.now() - started) / 1000)} s`);
}

async function buildKube(config: StackConfig, tools: ClusterTools, progress: Progress) {
  const binary = path.join(tools.kubeDir, 'kube');
  const partial = `${binary}.partial`;
  await goBuild(
    config,
    progress,
    `Kubernetes ${KUBERNETES_VERSION} (apiserver, controller-manager, scheduler, kubelet, proxy, kubectl)`,
    partial,
    ['build', '-trimpath', '-ldflags', kubeLdflags(), '-o', partial, '.'],
    toolsSource('kube'),
  );
  await rename(partial, binary);
  for (const component of KUBE_COMPONENTS) {
    await rm(path.join(tools.kubeDir, component), { force: true });
    await symlink('kube', path.join(tools.kubeDir, component));
  }
}

/** `go install module@version` into the tool's own folder. */
async function goInstall(
  config: StackConfig,
  progress: Progress,
  target: string,
  module: string,
): Promise<void> {
  const dir = path.dirname(target);
  const scratch = `${dir}.partial`;
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  await mkdir(path.dirname(target), { recursive: true });
  const started = Date.now();
  progress(`building ${module} from the Go module proxy`);
  await withTicker(`building ${module}`, progress, () =>
    runChecked('nice', ['-n', '10', 'go', 'install', '-trimpath', '-ldflags', '-s -w', module], {
      env: { ...config.hostEnv, CGO_ENABLED: '0', GOBIN: scratch },
    }),
  );
  const built = path.join(scratch, module.split('@')[0]?.split('/').at(-1) ?? '');
  await rename(built, target);
  await rm(scratch, { recursive: true, force: true });
  progress(`built ${path.basename(target)} in ${Math.round((Date.now() - started) / 1000)} s`);
}

async function buildCoredns(config: StackConfig, tools: ClusterTools, progress: Progress) {
  const partial = `${tools.coredns}.partial`;
  await goBuild(
    config,
    progress,
    `CoreDNS ${COREDNS_VERSION}`,
    partial,
    ['build', '-trimpath', '-ldflags', '-s -w', '-o', partial, '.'],
    toolsSource('coredns'),
  );
  await rename(partial, tools.coredns);
}

async function buildPause(tools: ClusterTools, progress: Progress) {
  await mkdir(path.dirname(tools.pause), { recursive: true });
  const partial = `${tools.pause}.partial`;
  await runChecked('gcc', [
    '-static',
    '-Os',
    '-o',
    partial,
    path.join(toolsSource('pause'), 'pause.c'),
  ]);
  await rename(partial, tools.pause);
  progress('built the pause binary (static C)');
}

/** kubernetes-validate (PyPI) carries every Kubernetes release's schemas: an offline strict check. */
async function installKubernetesValidate(tools: ClusterTools, progress: Progress) {
  const venv = path.dirname(path.dirname(tools.kubernetesValidate));
  await rm(venv, { recursive: true, force: true });
  progress(`installing kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} from PyPI`);
  await runChecked('python3', ['-m', 'venv', venv]);
  await runChecked(path.join(venv, 'bin', 'pip'), [
    'install',
    '-q',
    '--disable-pip-version-check',
    `kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}`,
  ]);
}

function missingPackages(): string[] {
  const found = (file: string) => existsSync(file);
  const checks: Record<(typeof CLUSTER_PACKAGES)[number], boolean> = {
    'docker.io': found('/usr/sbin/dockerd'),
    containerd: found('/usr/bin/containerd'),
    runc: found('/usr/sbin/runc') || found('/usr/bin/runc'),
    'docker-registry': found('/usr/bin/docker-registry'),
    debootstrap: found('/usr/sbin/debootstrap'),
    'containernetworking-plugins': found('/usr/lib/cni/bridge'),
    iptables: found('/usr/sbin/iptables'),
    conntrack: found('/usr/sbin/conntrack'),
    'etcd-server': found('/usr/bin/etcd'),
    openssl: found('/usr/bin/openssl'),
  };
  return CLUSTER_PACKAGES.filter((pkg) => !checks[pkg]);
}

/**
 * Installs and builds whatever of the cluster's tools is missing, keyed by version in the tools
 * dir; a warm machine does no work here.
 */
export async function ensureClusterTools(
  config: StackConfig,
  progress: Progress,
): Promise<ClusterTools> {
  const tools = clusterToolPaths(config);
  const missing = missingPackages();
  if (missing.length > 0) await aptInstall(missing, config, progress);
  if ((await run('go', ['version'])).code !== 0) {
    throw new Error('Go is required to build Kubernetes (apt-get install golang-go).');
  }
  if (!existsSync(path.join(tools.kubeDir, 'kube'))) await buildKube(config, tools, progress);
  if (!existsSync(tools.helm)) {
    await goInstall(config, progress, tools.helm, `helm.sh/helm/v4/cmd/helm@${HELM_VERSION}`);
  }
  if (!existsSync(tools.crictl)) {
    await goInstall(
      config,
      progress,
      tools.crictl,
      `sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}`,
    );
  }
  if (!existsSync(tools.coredns)) await buildCoredns(config, tools, progress);
  if (!existsSync(tools.pause)) await buildPause(tools, progress);
  if (!existsSync(tools.kubernetesValidate)) await installKubernetesValidate(tools, progress);
  return tools;
}
