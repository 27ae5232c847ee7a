import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { repoRoot } from '../../../stack/src/config';
import { helmBinary } from './config';

// The rendered chart, checked without a cluster: the local bridge CNI accepts NetworkPolicies but
// cannot enforce them, so the policies are proved here, edge by edge (docs/deploy.md).

const helm = helmBinary();
const chart = path.join(repoRoot, 'deploy', 'helm', 'bazaar');
const release = 'bazaar';
const namespace = 'bazaar';

interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
}
interface Peer {
  readonly podSelector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  readonly ipBlock?: { readonly cidr: string };
}
interface PolicyPort {
  readonly port: number;
  readonly protocol?: string;
}
interface PolicyRule {
  readonly from?: readonly Peer[];
  readonly to?: readonly Peer[];
  readonly ports?: readonly PolicyPort[];
}
interface SecurityContext {
  readonly runAsNonRoot?: boolean;
  readonly runAsUser?: number;
  readonly runAsGroup?: number;
  readonly fsGroup?: number;
  readonly privileged?: boolean;
  readonly allowPrivilegeEscalation?: boolean;
  readonly readOnlyRootFilesystem?: boolean;
  readonly capabilities?: { readonly add?: readonly string[]; readonly drop?: readonly string[] };
  readonly seccompProfile?: { readonly type?: string };
}
interface EnvVar {
  readonly name: string;
  readonly value?: string;
}
interface Container {
  readonly name: string;
  readonly image: string;
  readonly env?: readonly EnvVar[];
  readonly envFrom?: readonly { readonly configMapRef?: { readonly name: string } }[];
  readonly ports?: readonly { readonly hostPort?: number }[];
  readonly securityContext?: SecurityContext;
  readonly lifecycle?: { readonly preStop?: { readonly sleep?: { readonly seconds: number } } };
}
interface PodSpec {
  readonly hostNetwork?: boolean;
  readonly hostPID?: boolean;
  readonly hostIPC?: boolean;
  readonly automountServiceAccountToken?: boolean;
  readonly terminationGracePeriodSeconds?: number;
  readonly securityContext?: SecurityContext;
  readonly containers: readonly Container[];
  readonly initContainers?: readonly Container[];
  readonly volumes?: readonly Record<string, unknown>[];
}
interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly labels?: Readonly<Record<string, string>>;
  };
  readonly data?: Readonly<Record<string, string>>;
  readonly spec?: {
    readonly replicas?: number;
    readonly podSelector?: LabelSelector;
    readonly policyTypes?: readonly string[];
    readonly ingress?: readonly PolicyRule[];
    readonly egress?: readonly PolicyRule[];
    readonly template?: { readonly metadata?: Manifest['metadata']; readonly spec: PodSpec };
  } & Partial<PodSpec>;
}

const services = ['gateway', 'users', 'orders', 'payments', 'psp-sandbox', 'notifications'];
const components = [...services, 'analytics', 'edge'];
const stores = ['postgres', 'mongo', 'redis', 'rabbitmq', 'mail'];

/** A made-up digest per image, as `npm run images` would write it. */
function digestOf(name: string): string {
  return `sha256:${createHash('sha256').update(name).digest('hex')}`;
}

function imagesValues(withDigests: boolean): string {
  const image = (name: string) => ({
    repository: `bazaar/${name}`,
    tag: 'abc1234',
    ...(withDigests ? { digest: digestOf(name) } : {}),
  });
  return stringify({
    image: { registry: '127.0.0.1:5000' },
    components: Object.fromEntries(components.map((name) => [name, { image: image(name) }])),
    infra: Object.fromEntries(stores.map((name) => [name, { image: image(name) }])),
  });
}

let dir = '';
let imagesFile = '';
let tagsFile = '';
const adminPassword = `admin-${randomBytes(12).toString('hex')}`;

function helmRun(args: readonly string[]) {
  const result = spawnSync(helm, args, { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function template(args: readonly string[] = []) {
  return helmRun(['template', release, chart, '--namespace', namespace, ...args]);
}

/** The manifests of a render that must succeed. */
function render(args: readonly string[] = []): Manifest[] {
  const result = template(['-f', imagesFile, ...args]);
  expect(result.status, result.stderr).toBe(0);
  return parseAllDocuments(result.stdout)
    .map((document) => document.toJS() as Manifest | null)
    .filter((manifest): manifest is Manifest => manifest !== null);
}

const withAdmin = [
  '--set',
  'admin.email=admin@bazaar.test',
  '--set',
  `admin.password=${adminPassword}`,
];

interface Pod {
  readonly owner: string;
  /** The node of the graph the pod belongs to (its app.kubernetes.io/name). */
  readonly node: string | undefined;
  readonly spec: PodSpec;
}

/** Every pod the chart can start: Deployments, StatefulSets, Jobs and the test Pod. */
function podsOf(manifests: readonly Manifest[]): Pod[] {
  return manifests.flatMap((manifest): Pod[] => {
    const owner = `${manifest.kind}/${manifest.metadata.name}`;
    if (['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(manifest.kind)) {
      const template = manifest.spec?.template;
      if (template === undefined) return [];
      const node = template.metadata?.labels?.['app.kubernetes.io/name'];
      return [{ owner, node, spec: template.spec }];
    }
    if (manifest.kind === 'Pod' && manifest.spec !== undefined) {
      const node = manifest.metadata.labels?.['app.kubernetes.io/name'];
      return [{ owner, node, spec: manifest.spec as PodSpec }];
    }
    return [];
  });
}

const allowedVolumeTypes = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
];

/**
 * What keeps a pod out of Pod Security "restricted" (v1.30+ rules), plus the chart's own rules:
 * uid/gid 10001, a read-only root filesystem and no service account token.
 */
function restrictedViolations(owner: string, spec: PodSpec): string[] {
  const problems: string[] = [];
  const pod = spec.securityContext ?? {};
  if (spec.hostNetwork === true || spec.hostPID === true || spec.hostIPC === true) {
    problems.push(`${owner}: host namespaces`);
  }
  if (spec.automountServiceAccountToken !== false) problems.push(`${owner}: token automounted`);
  if (pod.fsGroup !== 10001) problems.push(`${owner}: fsGroup is not 10001`);
  for (const volume of spec.volumes ?? []) {
    const types = Object.keys(volume).filter((key) => key !== 'name');
    if (!types.every((type) => allowedVolumeTypes.includes(type))) {
      problems.push(`${owner}: volume type ${types.join(',')}`);
    }
  }
  for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
    const where = `${owner}/${container.name}`;
    const own = container.securityContext ?? {};
    if (own.privileged === true) problems.push(`${where}: privileged`);
    if (own.allowPrivilegeEscalation !== false) problems.push(`${where}: privilege escalation`);
    if ((own.runAsNonRoot ?? pod.runAsNonRoot) !== true) problems.push(`${where}: may run as root`);
    const uid = own.runAsUser ?? pod.runAsUser;
    if (uid !== 10001) problems.push(`${where}: runAsUser ${String(uid)}`);
    if ((own.runAsGroup ?? pod.runAsGroup) !== 10001) problems.push(`${where}: runAsGroup`);
    const seccomp = own.seccompProfile?.type ?? pod.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') {
      problems.push(`${where}: seccomp ${String(seccomp)}`);
    }
    if (!(own.capabilities?.drop ?? []).includes('ALL')) problems.push(`${where}: drop ALL`);
    for (const added of own.capabilities?.add ?? []) {
      if (added !== 'NET_BIND_SERVICE') problems.push(`${where}: adds ${added}`);
    }
    if (own.readOnlyRootFilesystem !== true) problems.push(`${where}: writable root filesystem`);
    if ((container.ports ?? []).some((port) => (port.hostPort ?? 0) !== 0)) {
      problems.push(`${where}: hostPort`);
    }
  }
  return problems;
}

const dnsPeer = JSON.stringify({
  namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
  podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
});

/** A peer by node name when it selects pods of this release only, else as its JSON. */
function peerName(peer: Peer): string {
  const labels = peer.podSelector?.matchLabels ?? {};
  const name = labels['app.kubernetes.io/name'];
  if (
    peer.namespaceSelector === undefined &&
    peer.ipBlock === undefined &&
    name !== undefined &&
    labels['app.kubernetes.io/instance'] === release &&
    Object.keys(labels).length === 2
  ) {
    return name;
  }
  return JSON.stringify(peer);
}

interface Edges {
  readonly egress: Set<string>;
  readonly ingress: Set<string>;
  /** Nodes whose policy lets them resolve names (UDP and TCP 53 to kube-system's DNS). */
  readonly resolving: Set<string>;
  readonly selected: Set<string>;
}

/** The (from → to:port) edges the rendered policies allow, each side on its own. */
function edgesOf(manifests: readonly Manifest[]): Edges {
  const edges: Edges = {
    egress: new Set(),
    ingress: new Set(),
    resolving: new Set(),
    selected: new Set(),
  };
  for (const policy of manifests.filter((manifest) => manifest.kind === 'NetworkPolicy')) {
    const selector = policy.spec?.podSelector?.matchLabels ?? {};
    const node = selector['app.kubernetes.io/name'];
    if (node === undefined) continue;
    expect(policy.spec?.policyTypes, policy.metadata.name).toEqual(['Ingress', 'Egress']);
    expect(selector['app.kubernetes.io/instance']).toBe(release);
    expect(edges.selected.has(node), `two policies select ${node}`).toBe(false);
    edges.selected.add(node);
    for (const rule of policy.spec?.egress ?? []) {
      const peers = (rule.to ?? [{}]).map((peer) =>
        JSON.stringify(peer) === '{}' ? '*' : peerName(peer),
      );
      for (const peer of peers) {
        const ports = (rule.ports ?? []).map((port) => `${port.port}/${port.protocol ?? 'TCP'}`);
        if (peer === dnsPeer && ports.sort().join() === '53/TCP,53/UDP') {
          edges.resolving.add(node);
          continue;
        }
        for (const port of ports) edges.egress.add(`${node} -> ${peer}:${port}`);
      }
    }
    for (const rule of policy.spec?.ingress ?? []) {
      const peers = (rule.from ?? [{}]).map((peer) =>
        JSON.stringify(peer) === '{}' ? '*' : peerName(peer),
      );
      for (const peer of peers) {
        for (const port of rule.ports ?? []) {
          edges.ingress.add(`${peer} -> ${node}:${port.port}/${port.protocol ?? 'TCP'}`);
        }
      }
    }
  }
  return edges;
}

/** The architecture's edges (ARCHITECTURE.md), plus the Jobs' and the test's. */
const architectureEdges: readonly (readonly [string, string, number])[] = [
  ['edge', 'gateway', 8080],
  ['gateway', 'users', 8080],
  ['gateway', 'orders', 8080],
  ['gateway', 'payments', 8080],
  ['gateway', 'notifications', 8080],
  ['gateway', 'analytics', 8080],
  ['gateway', 'redis', 6379],
  ['users', 'postgres', 5432],
  ['users', 'redis', 6379],
  ['users', 'rabbitmq', 5672],
  ['orders', 'mongo', 27017],
  ['orders', 'rabbitmq', 5672],
  ['orders', 'users', 8080],
  ['mongo', 'postgres', 5432],
  ['payments', 'postgres', 5432],
  ['payments', 'rabbitmq', 5672],
  ['payments', 'psp-sandbox', 8080],
  ['payments', 'users', 8080],
  ['notifications', 'postgres', 5432],
  ['notifications', 'rabbitmq', 5672],
  ['notifications', 'mail', 1025],
  ['notifications', 'mail', 1080],
  ['notifications', 'users', 8080],
  ['analytics', 'rabbitmq', 5672],
  ['analytics', 'users', 8080],
  ['users-migrate', 'postgres', 5432],
  ['payments-migrate', 'postgres', 5432],
  ['notifications-migrate', 'postgres', 5432],
  ['users-bootstrap-admin', 'postgres', 5432],
  ['users-bootstrap-admin', 'redis', 6379],
  ['smoke-test', 'edge', 8080],
];
/** What sends telemetry: the Node.js services and the Jobs (the edge's nginx logs to stdout). */
const emitters = [
  ...components.filter((name) => name !== 'edge'),
  'users-migrate',
  'payments-migrate',
  'notifications-migrate',
  'users-bootstrap-admin',
];

function edgeSet(edges: readonly (readonly [string, string, number])[]): Set<string> {
  return new Set(edges.map(([from, to, port]) => `${from} -> ${to}:${port}/TCP`));
}

beforeAll(() => {
  if (!existsSync(helm)) {
    throw new Error(`helm not found at ${helm}: build the tools (npm run k8s -- up) or set HELM`);
  }
  dir = mkdtempSync(path.join(os.tmpdir(), 'bazaar-chart-'));
  imagesFile = path.join(dir, 'images.values.yaml');
  tagsFile = path.join(dir, 'tags.values.yaml');
  writeFileSync(imagesFile, imagesValues(true));
  writeFileSync(tagsFile, imagesValues(false));
});

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('the chart', () => {
  it('passes helm lint --strict', () => {
    const result = helmRun(['lint', '--strict', chart, '-f', imagesFile]);
    expect(result.status, result.stdout + result.stderr).toBe(0);
  });
});

describe('NetworkPolicies', () => {
  it('deny everything by default for every pod of the release', () => {
    const policies = render(withAdmin).filter((manifest) => manifest.kind === 'NetworkPolicy');
    const deny = policies.find((policy) => policy.metadata.name === 'bazaar-default-deny');
    expect(deny?.spec?.podSelector).toEqual({
      matchLabels: { 'app.kubernetes.io/instance': release },
    });
    expect(deny?.spec?.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(deny?.spec?.ingress).toBeUndefined();
    expect(deny?.spec?.egress).toBeUndefined();
  });

  it('allow exactly the architecture’s edges, on both ends, and DNS for every pod', () => {
    const manifests = render(withAdmin);
    const edges = edgesOf(manifests);
    const expected = edgeSet(architectureEdges);
    expect([...edges.egress].sort()).toEqual([...expected].sort());
    // The edge is the public entry: anyone may reach it, besides the nodes that call it.
    expect([...edges.ingress].sort()).toEqual([...expected, '* -> edge:8080/TCP'].sort());
    const nodes = podsOf(manifests).map((pod) => pod.node ?? pod.owner);
    // Every pod has its own policy, and every policy's pods resolve names.
    expect([...edges.selected].sort()).toEqual([...new Set(nodes)].sort());
    expect([...edges.resolving].sort()).toEqual([...edges.selected].sort());
  });

  it('add the observability endpoints for what emits telemetry, and the scrapers’ ingress', () => {
    const otlpPeer = {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } },
    };
    const prometheusPeer = {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
    };
    const observability = path.join(dir, 'observability.values.yaml');
    writeFileSync(
      observability,
      stringify({
        observability: {
          otlp: { url: 'http://jaeger-collector.observability:4318', to: [otlpPeer] },
          elasticsearch: { url: 'https://es.observability' },
          prometheus: { from: [prometheusPeer] },
        },
      }),
    );
    const manifests = render([...withAdmin, '-f', observability]);
    const edges = edgesOf(manifests);
    const expectedEgress = new Set([
      ...edgeSet(architectureEdges),
      ...emitters.map((name) => `${name} -> ${JSON.stringify(otlpPeer)}:4318/TCP`),
      // No peers given: anywhere, on the URL's port only.
      ...emitters.map((name) => `${name} -> *:443/TCP`),
    ]);
    expect([...edges.egress].sort()).toEqual([...expectedEgress].sort());
    const expectedIngress = new Set([
      ...edgeSet(architectureEdges),
      '* -> edge:8080/TCP',
      ...components.map((name) => `${JSON.stringify(prometheusPeer)} -> ${name}:8080/TCP`),
    ]);
    expect([...edges.ingress].sort()).toEqual([...expectedIngress].sort());
    const notifications = manifests.find(
      (manifest) => manifest.kind === 'ConfigMap' && manifest.metadata.name === 'notifications',
    );
    expect(notifications?.data).toMatchObject({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger-collector.observability:4318',
      LOG_ELASTICSEARCH_URL: 'https://es.observability',
    });
  });
});

describe('Pod Security', () => {
  it('every pod of the chart satisfies "restricted"', () => {
    const pods = podsOf(render(withAdmin));
    expect(pods.map((pod) => pod.owner)).toEqual(
      expect.arrayContaining([
        'Deployment/orders',
        'StatefulSet/postgres',
        'Job/users-migrate',
        'Job/users-bootstrap-admin',
        'Pod/smoke-test',
      ]),
    );
    expect(pods.flatMap(({ owner, spec }) => restrictedViolations(owner, spec))).toEqual([]);
  });

  it('the suite’s deliberately privileged pod is caught by the same check', () => {
    const file = path.join(repoRoot, 'deploy', 'k8s', 'test', 'privileged-pod.yaml');
    const pods = podsOf(
      parseAllDocuments(readFileSync(file, 'utf8')).map((document) => document.toJS() as Manifest),
    );
    expect(pods).toHaveLength(1);
    const problems = pods.flatMap(({ owner, spec }) => restrictedViolations(owner, spec));
    expect(problems).toEqual(
      expect.arrayContaining([
        'Pod/bazaar-privileged-probe/probe: privileged',
        'Pod/bazaar-privileged-probe/probe: privilege escalation',
      ]),
    );
  });

  it('the drain fits in the grace period of every component', () => {
    const manifests = render();
    const deployments = manifests.filter((item) => item.kind === 'Deployment');
    expect(deployments).toHaveLength(components.length);
    for (const manifest of deployments) {
      const spec = manifest.spec?.template?.spec as PodSpec;
      const container = spec.containers[0] as Container;
      const preStop = container.lifecycle?.preStop?.sleep?.seconds ?? 0;
      const configMap = manifests.find(
        (item) => item.kind === 'ConfigMap' && item.metadata.name === manifest.metadata.name,
      );
      const drainMs = Number(configMap?.data?.SHUTDOWN_TIMEOUT_MS ?? 0);
      expect(preStop, manifest.metadata.name).toBeGreaterThan(0);
      expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(preStop + drainMs / 1000);
    }
  });
});

describe('images', () => {
  it('are referenced by digest when digests are given', () => {
    const images = podsOf(render(withAdmin)).flatMap(({ spec }) =>
      [...spec.containers, ...(spec.initContainers ?? [])].map((container) => container.image),
    );
    expect(images.length).toBeGreaterThan(components.length + stores.length);
    for (const image of images) {
      const match = /^127\.0\.0\.1:5000\/bazaar\/([a-z-]+)@(sha256:[0-9a-f]{64})$/.exec(image);
      expect(match, image).not.toBeNull();
      expect(match?.[2]).toBe(digestOf(match?.[1] ?? ''));
    }
  });

  it('fall back to tags without digests', () => {
    const result = template(['-f', tagsFile]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('image: 127.0.0.1:5000/bazaar/orders:abc1234');
    expect(result.stdout).not.toContain('@sha256:');
  });
});

describe('values.schema.json', () => {
  it.each([
    ['a component', 'components.order.replicas=2'],
    ['a component field', 'components.orders.replica=2'],
    ['a default', 'componentDefaults.drain.preStop=5'],
    ['a store', 'infra.postgress.storage=1Gi'],
    ['a top-level key', 'networkPolicies.enabled=false'],
    ['an edge to nowhere', 'components.orders.talksTo={mongo,billing}'],
    ['a malformed digest', 'components.orders.image.digest=sha256:abc'],
  ])('refuses a typo in %s', (_what, value) => {
    const result = template(['-f', imagesFile, '--set', value]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("values don't meet the specifications of the schema");
  });
});

describe('secrets', () => {
  it('never appear in a ConfigMap or a plain env value', () => {
    const manifests = render(withAdmin);
    const secrets = manifests
      .filter((manifest) => manifest.kind === 'Secret')
      .flatMap((secret) => Object.values(secret.data ?? {}))
      .map((encoded) => Buffer.from(encoded, 'base64').toString('utf8'));
    expect(secrets).toContain(adminPassword);
    expect(secrets.length).toBeGreaterThanOrEqual(8);
    const configMaps = manifests.filter((manifest) => manifest.kind === 'ConfigMap');
    const envConfigMaps = new Set(
      podsOf(manifests).flatMap(({ spec }) =>
        spec.containers.flatMap((container) =>
          (container.envFrom ?? []).flatMap((source) => source.configMapRef?.name ?? []),
        ),
      ),
    );
    expect(envConfigMaps.size).toBe(components.length);
    for (const configMap of configMaps) {
      for (const [key, value] of Object.entries(configMap.data ?? {})) {
        const where = `ConfigMap/${configMap.metadata.name} ${key}`;
        for (const secret of secrets) expect(value.includes(secret), where).toBe(false);
        if (!envConfigMaps.has(configMap.metadata.name)) continue;
        expect(key, where).not.toMatch(/PASSWORD|SECRET|TOKEN|ENCRYPTION_KEY|SERVICE_CLIENTS/);
        expect(value, where).not.toMatch(/\/\/[^/@\s]*:[^/@\s]*@/);
      }
    }
    for (const { owner, spec } of podsOf(manifests)) {
      for (const container of spec.containers) {
        for (const variable of container.env ?? []) {
          for (const secret of secrets) {
            expect(variable.value?.includes(secret), `${owner} ${variable.name}`).not.toBe(true);
          }
        }
      }
    }
  });

  it('are taken from an existing Secret instead of generated', () => {
    const manifests = render(['--set', 'secrets.existingSecret=bazaar-prod']);
    expect(manifests.filter((manifest) => manifest.kind === 'Secret')).toEqual([]);
    const users = manifests.find(
      (manifest) => manifest.kind === 'Deployment' && manifest.metadata.name === 'users',
    );
    expect(JSON.stringify(users?.spec?.template?.spec.containers[0]?.env)).toContain(
      '"name":"bazaar-prod","key":"users-key-encryption-key"',
    );
  });
});
