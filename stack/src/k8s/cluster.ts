import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { StackConfig } from '../config';
import { isAlive } from '../proc';
import { isListening } from './forward';
import { run, runChecked } from '../run';
import type { Progress } from '../tools';
import {
  cniConfig,
  containerdConfig,
  COREDNS_IMAGE,
  corednsManifests,
  kubeletConfig,
  kubeProxyConfig,
  PAUSE_IMAGE,
  registryConfig,
} from './configs';
import {
  clusterLayout,
  DNS_SERVICE_IP,
  KUBERNETES_SERVICE_IP,
  NETNS,
  NODE_IP,
  NODE_NAME,
  POD_CIDR,
  PUBLIC_PORT,
  SERVICE_CIDR,
  type ClusterLayout,
} from './layout';
import { createNetns, deleteNetns, netnsExists, runInNetns, spawnDaemon } from './netns';
import { ensurePki, kubeconfig, type CertSpec } from './pki';
import { clusterToolPaths, ensureClusterTools, type ClusterTools } from './tools';

/** The daemons of the cluster, in start order; `down` stops them in the order K8S.md gives. */
export type DaemonName =
  | 'registry'
  | 'dockerd'
  | 'etcd'
  | 'kube-apiserver'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'containerd'
  | 'kubelet'
  | 'kube-proxy'
  | 'forward-inner'
  | 'forward-outer';

export const STOP_ORDER: readonly DaemonName[] = [
  'forward-outer',
  'forward-inner',
  'kubelet',
  'kube-proxy',
  'kube-scheduler',
  'kube-controller-manager',
  'kube-apiserver',
  'containerd',
  'etcd',
  'registry',
  'dockerd',
];

/**
 * The VM-wide sysctls the kubelet rewrites at start (`setupKernelTunables`): saved by the first
 * `up`, restored by `down`.
 */
export const KUBELET_SYSCTLS = [
  'vm.overcommit_memory',
  'vm.panic_on_oom',
  'kernel.panic',
  'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys',
  'kernel.keys.root_maxbytes',
] as const;

const API_SERVER = `https://${NODE_IP}:6443`;

export const CERTS: readonly CertSpec[] = [
  {
    name: 'apiserver',
    commonName: 'kube-apiserver',
    altNames: [
      `IP:${NODE_IP}`,
      `IP:${KUBERNETES_SERVICE_IP}`,
      'IP:127.0.0.1',
      'DNS:kubernetes',
      'DNS:kubernetes.default',
      'DNS:kubernetes.default.svc',
      'DNS:kubernetes.default.svc.cluster.local',
    ],
  },
  {
    name: 'apiserver-kubelet-client',
    commonName: 'kube-apiserver-kubelet-client',
    organization: 'system:masters',
  },
  { name: 'admin', commonName: 'bazaar-admin', organization: 'system:masters' },
  { name: 'controller-manager', commonName: 'system:kube-controller-manager' },
  { name: 'scheduler', commonName: 'system:kube-scheduler' },
  { name: 'kube-proxy', commonName: 'system:kube-proxy', organization: 'system:node-proxier' },
  { name: 'kubelet', commonName: `system:node:${NODE_NAME}`, organization: 'system:nodes' },
  {
    name: 'kubelet-serving',
    commonName: NODE_NAME,
    altNames: [`IP:${NODE_IP}`, `DNS:${NODE_NAME}`],
  },
];

type Pids = Partial<Record<DaemonName, number>>;

async function readPids(layout: ClusterLayout): Promise<Pids> {
  try {
    return JSON.parse(await readFile(layout.pidsFile, 'utf8')) as Pids;
  } catch {
    return {};
  }
}

async function recordPid(layout: ClusterLayout, name: DaemonName, pid: number) {
  const pids = await readPids(layout);
  pids[name] = pid;
  await writeFile(layout.pidsFile, JSON.stringify(pids, null, 2));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it is true, failing with the daemon's last log lines after `timeoutMs`. */
async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  logFile?: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(250);
  }
  const tail =
    logFile !== undefined && existsSync(logFile)
      ? `\n${readFileSync(logFile, 'utf8').split('\n').slice(-25).join('\n')}`
      : '';
  throw new Error(`${what} was not ready within ${Math.round(timeoutMs / 1000)} s${tail}`);
}

/** An HTTP(S) GET from inside the namespace answered 2xx (Node's fetch; no curl on a fresh box). */
async function httpOkInNetns(url: string): Promise<boolean> {
  const script =
    "process.env.NODE_TLS_REJECT_UNAUTHORIZED='0';" +
    'fetch(process.argv[1],{signal:AbortSignal.timeout(2000)}).then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))';
  const result = await runInNetns(process.execPath, ['-e', script, url]);
  return result.code === 0;
}

/** What every command of the cluster needs: tools, files, and clients bound to the namespace. */
export interface Cluster {
  readonly config: StackConfig;
  readonly layout: ClusterLayout;
  readonly tools: ClusterTools;
  readonly say: Progress;
  /** Aborted when `up` is interrupted: nothing more is started while `down` removes what was. */
  readonly aborted: AbortController;
}

export function clusterOf(config: StackConfig, say: Progress): Cluster {
  return {
    config,
    layout: clusterLayout(config),
    tools: clusterToolPaths(config),
    say,
    aborted: new AbortController(),
  };
}

/** kubectl against the cluster, run inside its namespace. */
export function kubectl(cluster: Cluster, args: readonly string[], input?: string) {
  return runInNetns(
    cluster.tools.kubectl,
    ['--kubeconfig', cluster.layout.adminKubeconfig, ...args],
    {
      ...(input === undefined ? {} : { input }),
    },
  );
}

export async function kubectlChecked(cluster: Cluster, args: readonly string[], input?: string) {
  const result = await kubectl(cluster, args, input);
  if (result.code !== 0) {
    throw new Error(`kubectl ${args.join(' ')} failed:\n${result.stderr || result.stdout}`);
  }
  return result.stdout;
}

/** Helm's caches and settings live in the cluster's state, not in the caller's home. */
export function helmEnv(cluster: Cluster): NodeJS.ProcessEnv {
  const home = path.join(cluster.layout.state, 'helm');
  return {
    ...cluster.config.hostEnv,
    KUBECONFIG: cluster.layout.adminKubeconfig,
    HELM_CACHE_HOME: path.join(home, 'cache'),
    HELM_CONFIG_HOME: path.join(home, 'config'),
    HELM_DATA_HOME: path.join(home, 'data'),
  };
}

export function helm(cluster: Cluster, args: readonly string[]) {
  return runInNetns(cluster.tools.helm, args, { env: helmEnv(cluster) });
}

/** Debian's client (20.10, with BuildKit) when installed; another on PATH may lack buildx. */
const DOCKER_CLIENT = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

export function docker(cluster: Cluster, args: readonly string[], input?: string) {
  return run(DOCKER_CLIENT, ['-H', `unix://${cluster.layout.dockerSocket}`, ...args], {
    env: {
      ...cluster.config.hostEnv,
      DOCKER_CONFIG: path.join(cluster.layout.state, 'docker-client'),
    },
    ...(input === undefined ? {} : { input }),
  });
}

async function saveSysctls(layout: ClusterLayout) {
  // The first `up` saves; a second `up` over a running cluster must not save the kubelet's values.
  if (existsSync(layout.sysctlsFile)) return;
  const saved: Record<string, string> = {};
  for (const key of KUBELET_SYSCTLS) {
    saved[key] = (await runChecked('sysctl', ['-n', key])).trim();
  }
  await writeFile(layout.sysctlsFile, JSON.stringify(saved, null, 2));
}

export async function restoreSysctls(layout: ClusterLayout): Promise<string[]> {
  if (!existsSync(layout.sysctlsFile)) return [];
  const saved = JSON.parse(await readFile(layout.sysctlsFile, 'utf8')) as Record<string, string>;
  const restored: string[] = [];
  for (const [key, value] of Object.entries(saved)) {
    const now = (await run('sysctl', ['-n', key])).stdout.trim();
    if (now !== value) {
      await runChecked('sysctl', ['-q', '-w', `${key}=${value}`]);
      restored.push(`${key} ${now} → ${value}`);
    }
  }
  await rm(layout.sysctlsFile, { force: true });
  return restored;
}

async function writeConfigs(layout: ClusterLayout) {
  for (const dir of [
    layout.run,
    layout.logs,
    layout.kubeletRoot,
    path.join(layout.state, 'cni', 'net.d'),
    path.join(layout.state, 'pod-logs'),
    path.join(layout.run, 'containerd'),
    layout.cache,
  ]) {
    await mkdir(dir, { recursive: true });
  }
  await ensurePki(layout.pki, CERTS);
  const files: [string, string][] = [
    ['registry.yaml', registryConfig(layout)],
    ['containerd.toml', containerdConfig(layout)],
    [path.join('cni', 'net.d', '10-bazaar.conflist'), cniConfig(layout)],
    ['kubelet.yaml', kubeletConfig(layout)],
    ['kube-proxy.yaml', kubeProxyConfig(layout)],
    ['resolv.conf', `nameserver ${DNS_SERVICE_IP}\n`],
    ['admin.kubeconfig', kubeconfig(API_SERVER, layout.pki, 'admin')],
    ['controller-manager.kubeconfig', kubeconfig(API_SERVER, layout.pki, 'controller-manager')],
    ['scheduler.kubeconfig', kubeconfig(API_SERVER, layout.pki, 'scheduler')],
    ['kube-proxy.kubeconfig', kubeconfig(API_SERVER, layout.pki, 'kube-proxy')],
    ['kubelet.kubeconfig', kubeconfig(API_SERVER, layout.pki, 'kubelet')],
  ];
  for (const [file, content] of files) await writeFile(path.join(layout.state, file), content);
}

interface DaemonSpec {
  readonly name: DaemonName;
  readonly command: string;
  readonly args: readonly string[];
  readonly ready: () => Promise<boolean>;
  readonly timeoutMs: number;
  readonly host?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

function daemonSpecs(cluster: Cluster, forwardScript: string): DaemonSpec[] {
  const { layout, tools } = cluster;
  const at = (file: string) => path.join(layout.state, file);
  const pki = (file: string) => path.join(layout.pki, file);
  const kube = (component: string) => path.join(tools.kubeDir, component);
  const socketExists = (file: string) => () => Promise.resolve(existsSync(file));
  return [
    {
      name: 'registry',
      command: '/usr/bin/docker-registry',
      args: ['serve', at('registry.yaml')],
      ready: () => httpOkInNetns('http://127.0.0.1:5000/v2/'),
      timeoutMs: 15_000,
    },
    {
      name: 'dockerd',
      command: '/usr/sbin/dockerd',
      args: [
        '--bridge=none',
        '--iptables=false',
        '--ip6tables=false',
        '--ip-forward=false',
        '--ip-masq=false',
        '--userland-proxy=false',
        // Its build containers' cgroups under a name of ours: `down` removes it, and never a
        // `docker` cgroup of another engine on the machine.
        `--cgroup-parent=/${DOCKER_CGROUP_PARENT}`,
        '--data-root',
        path.join(layout.cache, 'docker'),
        '--exec-root',
        path.join(layout.run, 'docker'),
        '--pidfile',
        path.join(layout.run, 'docker.pid'),
        '-H',
        `unix://${layout.dockerSocket}`,
        '--log-level',
        'warn',
      ],
      ready: async () =>
        (await docker(cluster, ['version', '--format', '{{.Server.Version}}'])).code === 0,
      timeoutMs: 30_000,
    },
    {
      name: 'etcd',
      command: '/usr/bin/etcd',
      args: [
        '--name',
        'bazaar',
        '--data-dir',
        at('etcd'),
        '--listen-client-urls',
        'http://127.0.0.1:2379',
        '--advertise-client-urls',
        'http://127.0.0.1:2379',
        '--listen-peer-urls',
        'http://127.0.0.1:2380',
        '--initial-advertise-peer-urls',
        'http://127.0.0.1:2380',
        '--initial-cluster',
        'bazaar=http://127.0.0.1:2380',
        // A throwaway development cluster: no fsync per write.
        '--unsafe-no-fsync',
        '--log-level',
        'warn',
      ],
      ready: () => httpOkInNetns('http://127.0.0.1:2379/health'),
      timeoutMs: 20_000,
    },
    {
      name: 'kube-apiserver',
      command: kube('kube-apiserver'),
      args: [
        '--etcd-servers=http://127.0.0.1:2379',
        '--bind-address=0.0.0.0',
        '--secure-port=6443',
        `--advertise-address=${NODE_IP}`,
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        `--client-ca-file=${pki('ca.crt')}`,
        `--tls-cert-file=${pki('apiserver.crt')}`,
        `--tls-private-key-file=${pki('apiserver.key')}`,
        `--kubelet-client-certificate=${pki('apiserver-kubelet-client.crt')}`,
        `--kubelet-client-key=${pki('apiserver-kubelet-client.key')}`,
        `--kubelet-certificate-authority=${pki('ca.crt')}`,
        // No DNS for the node's name: the apiserver reaches the kubelet by its address.
        '--kubelet-preferred-address-types=InternalIP',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${pki('sa.pub')}`,
        `--service-account-signing-key-file=${pki('sa.key')}`,
        '--authorization-mode=Node,RBAC',
        // Admission (Pod Security), not static validation, is what refuses a privileged pod.
        '--allow-privileged=true',
        '--profiling=false',
        '--v=1',
      ],
      ready: async () => (await kubectl(cluster, ['get', '--raw', '/readyz'])).code === 0,
      timeoutMs: 90_000,
    },
    {
      name: 'kube-controller-manager',
      command: kube('kube-controller-manager'),
      args: [
        `--kubeconfig=${at('controller-manager.kubeconfig')}`,
        `--authentication-kubeconfig=${at('controller-manager.kubeconfig')}`,
        `--authorization-kubeconfig=${at('controller-manager.kubeconfig')}`,
        `--service-account-private-key-file=${pki('sa.key')}`,
        `--root-ca-file=${pki('ca.crt')}`,
        '--use-service-account-credentials=true',
        `--cluster-cidr=${POD_CIDR}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        '--profiling=false',
        '--v=1',
      ],
      ready: () => httpOkInNetns('https://127.0.0.1:10257/healthz'),
      timeoutMs: 60_000,
    },
    {
      name: 'kube-scheduler',
      command: kube('kube-scheduler'),
      args: [
        `--kubeconfig=${at('scheduler.kubeconfig')}`,
        `--authentication-kubeconfig=${at('scheduler.kubeconfig')}`,
        `--authorization-kubeconfig=${at('scheduler.kubeconfig')}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        '--profiling=false',
        '--v=1',
      ],
      ready: () => httpOkInNetns('https://127.0.0.1:10259/healthz'),
      timeoutMs: 60_000,
    },
    {
      name: 'containerd',
      command: '/usr/bin/containerd',
      args: ['--config', at('containerd.toml')],
      ready: async () =>
        existsSync(layout.containerdSocket) &&
        (
          await run(tools.crictl, [
            '--runtime-endpoint',
            `unix://${layout.containerdSocket}`,
            '--timeout',
            '2s',
            'info',
          ])
        ).code === 0,
      timeoutMs: 30_000,
    },
    {
      name: 'kubelet',
      command: kube('kubelet'),
      args: [
        `--config=${at('kubelet.yaml')}`,
        `--kubeconfig=${at('kubelet.kubeconfig')}`,
        `--root-dir=${layout.kubeletRoot}`,
        `--cert-dir=${path.join(layout.state, 'kubelet-pki')}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${NODE_IP}`,
        '--v=1',
      ],
      ready: () => httpOkInNetns('http://127.0.0.1:10248/healthz'),
      timeoutMs: 60_000,
    },
    {
      name: 'kube-proxy',
      command: kube('kube-proxy'),
      args: [`--config=${at('kube-proxy.yaml')}`, '--v=1'],
      ready: () => httpOkInNetns('http://127.0.0.1:10256/healthz'),
      timeoutMs: 30_000,
    },
    {
      name: 'forward-inner',
      command: process.execPath,
      args: [forwardScript, 'inner', layout.edgeSocket],
      ready: socketExists(layout.edgeSocket),
      timeoutMs: 10_000,
    },
    {
      name: 'forward-outer',
      command: process.execPath,
      args: [forwardScript, 'outer', layout.edgeSocket],
      ready: () => isListening(PUBLIC_PORT),
      timeoutMs: 10_000,
      host: true,
    },
  ];
}

async function startDaemon(cluster: Cluster, spec: DaemonSpec) {
  const { layout } = cluster;
  const pids = await readPids(layout);
  const known = pids[spec.name];
  const logFile = path.join(layout.logs, `${spec.name}.log`);
  if (known !== undefined && isRunning(known) && (await spec.ready().catch(() => false))) return;
  if (cluster.aborted.signal.aborted) throw new Error(`up was interrupted before ${spec.name}`);
  const started = Date.now();
  const pid = spawnDaemon(spec.command, spec.args, logFile, {
    env: spec.env ?? { ...cluster.config.childEnv },
    ...(spec.host === undefined ? {} : { host: spec.host }),
  });
  await recordPid(layout, spec.name, pid);
  // waitFor's error carries the daemon's last log lines.
  await waitFor(
    spec.name,
    async () => {
      if (!isRunning(pid)) throw new Error(`${spec.name} exited`);
      return spec.ready();
    },
    spec.timeoutMs,
    logFile,
  );
  cluster.say(`${spec.name} ready (${Date.now() - started} ms, pid ${pid})`);
}

/** Imports a single static binary as an image (`FROM scratch` by hand) and pushes it. */
async function pushBinaryImage(cluster: Cluster, binary: string, ref: string, args: string[]) {
  const inspect = await docker(cluster, ['image', 'inspect', ref]);
  if (inspect.code !== 0) {
    const dir = path.join(cluster.layout.state, 'rootfs', path.basename(binary));
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await runChecked('cp', [binary, path.join(dir, path.basename(binary))]);
    await runChecked('tar', ['-C', dir, '--owner=0', '--group=0', '-cf', `${dir}.tar`, '.']);
    const entry = JSON.stringify([`/${path.basename(binary)}`, ...args]);
    const imported = await run(DOCKER_CLIENT, [
      '-H',
      `unix://${cluster.layout.dockerSocket}`,
      'import',
      '--change',
      `ENTRYPOINT ${entry}`,
      `${dir}.tar`,
      ref,
    ]);
    if (imported.code !== 0) throw new Error(`docker import ${ref} failed: ${imported.stderr}`);
    await rm(`${dir}.tar`, { force: true });
    await rm(dir, { recursive: true, force: true });
  }
  const pushed = await docker(cluster, ['push', '--quiet', ref]);
  if (pushed.code !== 0) throw new Error(`docker push ${ref} failed: ${pushed.stderr}`);
}

/**
 * Starts the cluster (idempotent: what runs is kept): namespace, PKI, registry, engine, etcd,
 * control plane, containerd, kubelet, kube-proxy, CoreDNS, and the forward of the public entry.
 */
export async function clusterUp(cluster: Cluster, forwardScript: string): Promise<void> {
  const { config, layout, say } = cluster;
  if (!config.isRoot) {
    throw new Error(
      'the local cluster needs root: it creates a network namespace, mounts and cgroups (sudo npm run k8s -- up)',
    );
  }
  await ensureClusterTools(config, say);
  await mkdir(layout.state, { recursive: true });
  await saveSysctls(layout);
  await writeConfigs(layout);
  await createNetns();
  say(
    `network namespace ${NETNS} ready (node ${NODE_IP}, pods ${POD_CIDR}, services ${SERVICE_CIDR})`,
  );
  const specs = daemonSpecs(cluster, forwardScript);
  const byName = (name: DaemonName) => {
    const spec = specs.find((candidate) => candidate.name === name);
    if (spec === undefined) throw new Error(`no daemon ${name}`);
    return spec;
  };
  for (const name of [
    'registry',
    'dockerd',
    'etcd',
    'kube-apiserver',
    'kube-controller-manager',
    'kube-scheduler',
    'containerd',
  ] as const) {
    await startDaemon(cluster, byName(name));
  }
  await pushBinaryImage(cluster, cluster.tools.pause, PAUSE_IMAGE, []);
  await pushBinaryImage(cluster, cluster.tools.coredns, COREDNS_IMAGE, []);
  say('pushed the pause and CoreDNS images to the local registry');
  await startDaemon(cluster, byName('kubelet'));
  await startDaemon(cluster, byName('kube-proxy'));
  await waitFor(
    `node ${NODE_NAME}`,
    async () =>
      (
        await kubectl(cluster, [
          'wait',
          '--for=condition=Ready',
          `node/${NODE_NAME}`,
          '--timeout=2s',
        ])
      ).code === 0,
    60_000,
    path.join(layout.logs, 'kubelet.log'),
  );
  say(`node ${NODE_NAME} Ready`);
  await kubectlChecked(cluster, ['apply', '--server-side', '-f', '-'], corednsManifests());
  await kubectlChecked(cluster, [
    'rollout',
    'status',
    '-n',
    'kube-system',
    'deployment/coredns',
    '--timeout=120s',
  ]);
  say('CoreDNS ready');
  await startDaemon(cluster, byName('forward-inner'));
  await startDaemon(cluster, byName('forward-outer'));
}

function processesOf(layout: ClusterLayout): number[] {
  const found: number[] = [];
  const markers = [`${layout.state}/`, `${layout.cache}/`];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (markers.some((marker) => cmdline.includes(marker))) found.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

/** Alive and not a zombie: a daemon `up` left runs under init, which reaps it in its own time. */
function isRunning(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function stopPid(pid: number, graceMs: number) {
  if (!isRunning(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isRunning(pid) && Date.now() < deadline) await sleep(50);
  if (isRunning(pid)) process.kill(pid, 'SIGKILL');
}

/** Mount points at or below any of `roots`, deepest first. */
export function mountsUnder(mountinfo: string, roots: readonly string[]): string[] {
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && point !== '')
    .map((point) => point.replace(/\\040/g, ' '))
    .filter((point) => roots.some((root) => point === root || point.startsWith(`${root}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Removes a cgroup and everything below it, deepest first (empty cgroups only, as the kernel wants). */
function removeCgroupTree(dir: string): number {
  if (!existsSync(dir)) return 0;
  let removed = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removed += removeCgroupTree(path.join(dir, entry.name));
  }
  try {
    rmdirSync(dir);
    removed += 1;
  } catch {
    // Still has a process: reported by the caller's leftover check.
  }
  return removed;
}

export const DOCKER_CGROUP_PARENT = 'bazaar-docker';
/** The cgroups the cluster creates below each hierarchy's root: the kubelet's pods and our builds. */
export const CLUSTER_CGROUPS = ['kubepods', DOCKER_CGROUP_PARENT] as const;

/**
 * Stops everything `up` started, in K8S.md's order, then removes mounts, cgroups, the namespace
 * and the state, and restores the sysctls the kubelet changed. Safe to run at any point, twice,
 * or after a crash (it finds leftovers by their paths, not only by the pid file).
 */
export async function clusterDown(cluster: Cluster): Promise<void> {
  const { layout, say, tools } = cluster;
  const pids = await readPids(layout);
  const stop = async (name: DaemonName, graceMs = 10_000) => {
    const pid = pids[name];
    if (pid !== undefined && isRunning(pid)) {
      await stopPid(pid, graceMs);
      say(`stopped ${name}`);
    }
  };
  await stop('forward-outer', 2000);
  await stop('forward-inner', 2000);
  // The kubelet first, or it recreates the pods that are being removed.
  await stop('kubelet');
  if (
    existsSync(layout.containerdSocket) &&
    pids.containerd !== undefined &&
    isRunning(pids.containerd)
  ) {
    // Shims outlive containerd: remove the pods while it still runs.
    await run(tools.crictl, [
      '--runtime-endpoint',
      `unix://${layout.containerdSocket}`,
      '--timeout',
      '30s',
      'rmp',
      '-fa',
    ]);
  }
  for (const name of STOP_ORDER.slice(3)) await stop(name);
  // Whatever is left (shims, containers, build steps) is found by its paths or its namespace.
  const inNamespace = netnsExists()
    ? (await run('ip', ['netns', 'pids', NETNS])).stdout.split('\n').filter(Boolean).map(Number)
    : [];
  const left = [...new Set([...processesOf(layout), ...inNamespace])];
  for (const pid of left) await stopPid(pid, 3000);
  if (left.length > 0) say(`stopped ${left.length} leftover process(es)`);
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  const mounts = mountsUnder(mountinfo, [layout.state, layout.cache]);
  for (const point of mounts) await run('umount', ['-l', point]);
  if (mounts.length > 0) say(`unmounted ${mounts.length} mount(s)`);
  let cgroups = 0;
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    for (const name of CLUSTER_CGROUPS) {
      cgroups += removeCgroupTree(path.join('/sys/fs/cgroup', controller, name));
    }
  }
  if (cgroups > 0) say(`removed ${cgroups} cgroup(s)`);
  if (netnsExists()) {
    await deleteNetns();
    say(`deleted network namespace ${NETNS}`);
  }
  for (const change of await restoreSysctls(layout)) say(`restored sysctl ${change}`);
  // Keep the logs (they explain a failed run); everything else of the state goes.
  if (existsSync(layout.state)) {
    for (const entry of readdirSync(layout.state)) {
      if (entry !== 'logs')
        await rm(path.join(layout.state, entry), { recursive: true, force: true });
    }
  }
}

/** What is still on the machine of the cluster: the leftover check of `down` and of CI. */
export function clusterLeftovers(cluster: Cluster): string[] {
  const { layout } = cluster;
  const found: string[] = [];
  for (const pid of processesOf(layout)) found.push(`process ${pid}`);
  if (netnsExists()) found.push(`network namespace ${NETNS}`);
  for (const point of mountsUnder(readFileSync('/proc/self/mountinfo', 'utf8'), [
    layout.state,
    layout.cache,
  ])) {
    found.push(`mount ${point}`);
  }
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    for (const name of CLUSTER_CGROUPS) {
      const dir = path.join('/sys/fs/cgroup', controller, name);
      if (existsSync(dir)) found.push(`cgroup ${dir}`);
    }
  }
  if (existsSync(layout.sysctlsFile)) found.push(`unrestored sysctls in ${layout.sysctlsFile}`);
  return found;
}
