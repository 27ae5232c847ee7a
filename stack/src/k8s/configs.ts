import path from 'node:path';
import {
  CLUSTER_DOMAIN,
  DNS_SERVICE_IP,
  NODE_IP,
  NODE_NAME,
  POD_CIDR,
  REGISTRY,
  type ClusterLayout,
} from './layout';

/** The sandbox ("pause") image every pod starts with, pushed to the local registry by `up`. */
export const PAUSE_IMAGE = `${REGISTRY}/bazaar/pause:1`;
export const COREDNS_IMAGE = `${REGISTRY}/bazaar/coredns:v1.15.0`;

export function registryConfig(layout: ClusterLayout): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(layout.cache, 'registry')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${REGISTRY}`,
    '',
  ].join('\n');
}

/** containerd 1.6 (Debian 12), CRI on our socket, cgroupfs, the local registry over plain HTTP. */
export function containerdConfig(layout: ClusterLayout): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return [
    'version = 2',
    `root = ${JSON.stringify(path.join(layout.cache, 'containerd'))}`,
    `state = ${JSON.stringify(path.join(layout.run, 'containerd-state'))}`,
    '[grpc]',
    `  address = ${JSON.stringify(layout.containerdSocket)}`,
    '[ttrpc]',
    `  address = ${JSON.stringify(`${layout.containerdSocket}.ttrpc`)}`,
    '[metrics]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${JSON.stringify(path.join(layout.cache, 'containerd-opt'))}`,
    `[${cri}]`,
    `  sandbox_image = ${JSON.stringify(PAUSE_IMAGE)}`,
    // The kubelet asks for oom_score_adj values below ours; without this containerd fails them.
    '  restrict_oom_score_adj = true',
    '  disable_apparmor = true',
    `[${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${cri}.containerd.runtimes.runc.options]`,
    '  SystemdCgroup = false',
    `  Root = ${JSON.stringify(path.join(layout.run, 'runc'))}`,
    `[${cri}.cni]`,
    '  bin_dir = "/usr/lib/cni"',
    `  conf_dir = ${JSON.stringify(path.join(layout.state, 'cni', 'net.d'))}`,
    `[${cri}.registry.mirrors."${REGISTRY}"]`,
    `  endpoint = ["http://${REGISTRY}"]`,
    '',
  ].join('\n');
}

/** One bridge for every pod, addresses from host-local, hairpin so a pod reaches itself by VIP. */
export function cniConfig(layout: ClusterLayout): string {
  return `${JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'bazaar',
      plugins: [
        {
          type: 'bridge',
          bridge: 'bzk0',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: POD_CIDR }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: path.join(layout.state, 'cni', 'ipam'),
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  )}\n`;
}

export function kubeletConfig(layout: ClusterLayout): string {
  const pki = (file: string) => JSON.stringify(path.join(layout.pki, file));
  return [
    'apiVersion: kubelet.config.k8s.io/v1beta1',
    'kind: KubeletConfiguration',
    `address: ${NODE_IP}`,
    'port: 10250',
    'readOnlyPort: 0',
    'healthzBindAddress: 127.0.0.1',
    'healthzPort: 10248',
    'authentication:',
    '  anonymous: { enabled: false }',
    '  webhook: { enabled: true }',
    `  x509: { clientCAFile: ${pki('ca.crt')} }`,
    'authorization:',
    '  mode: Webhook',
    `tlsCertFile: ${pki('kubelet-serving.crt')}`,
    `tlsPrivateKeyFile: ${pki('kubelet-serving.key')}`,
    'cgroupDriver: cgroupfs',
    // This kernel mounts cgroup v1 (hybrid); the kubelet refuses v1 since 1.35 unless told.
    'failCgroupV1: false',
    `containerRuntimeEndpoint: unix://${layout.containerdSocket}`,
    `clusterDNS: [${DNS_SERVICE_IP}]`,
    `clusterDomain: ${CLUSTER_DOMAIN}`,
    `resolvConf: ${JSON.stringify(path.join(layout.state, 'resolv.conf'))}`,
    `podLogsDir: ${JSON.stringify(path.join(layout.state, 'pod-logs'))}`,
    'failSwapOn: false',
    'serializeImagePulls: false',
    'maxPods: 110',
    // A development node on a shared disk: evict only when the disk is really full.
    'evictionHard:',
    '  memory.available: 100Mi',
    '  nodefs.available: 1%',
    '  imagefs.available: 1%',
    '  nodefs.inodesFree: 1%',
    'imageGCHighThresholdPercent: 99',
    'imageGCLowThresholdPercent: 98',
    'shutdownGracePeriod: 0s',
    '',
  ].join('\n');
}

export function kubeProxyConfig(layout: ClusterLayout): string {
  return [
    'apiVersion: kubeproxy.config.k8s.io/v1alpha1',
    'kind: KubeProxyConfiguration',
    'mode: iptables',
    `hostnameOverride: ${NODE_NAME}`,
    `clusterCIDR: ${POD_CIDR}`,
    'clientConnection:',
    `  kubeconfig: ${JSON.stringify(path.join(layout.state, 'kube-proxy.kubeconfig'))}`,
    'healthzBindAddress: 127.0.0.1:10256',
    'metricsBindAddress: 127.0.0.1:10249',
    // Zero leaves the machine-wide conntrack settings alone.
    'conntrack:',
    '  maxPerCore: 0',
    '  min: 0',
    '  tcpEstablishedTimeout: 0s',
    '  tcpCloseWaitTimeout: 0s',
    '',
  ].join('\n');
}

/** Pod Security "restricted", pod level: what every pod the cluster code itself creates runs with. */
export const RESTRICTED_POD_SECURITY = {
  runAsNonRoot: true,
  runAsUser: 10001,
  runAsGroup: 10001,
  seccompProfile: { type: 'RuntimeDefault' },
} as const;

/** Pod Security "restricted", container level. */
export const RESTRICTED_CONTAINER_SECURITY = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
} as const;

/** CoreDNS answers for the cluster domain only (nothing outside exists), on an unprivileged port. */
export function corednsManifests(): string {
  const corefile = [
    '.:1053 {',
    '    errors',
    '    health :8080 {',
    '        lameduck 5s',
    '    }',
    '    ready :8181',
    `    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {`,
    '        pods insecure',
    '        fallthrough in-addr.arpa ip6.arpa',
    '        ttl 5',
    '    }',
    '    cache 5',
    '    loadbalance',
    '}',
  ].join('\n');
  const labels = { 'k8s-app': 'kube-dns' };
  const objects = [
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'coredns', namespace: 'kube-system' },
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'system:coredns' },
      rules: [
        {
          apiGroups: [''],
          resources: ['endpoints', 'services', 'pods', 'namespaces'],
          verbs: ['list', 'watch'],
        },
        {
          apiGroups: ['discovery.k8s.io'],
          resources: ['endpointslices'],
          verbs: ['list', 'watch'],
        },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'system:coredns' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'system:coredns',
      },
      subjects: [{ kind: 'ServiceAccount', name: 'coredns', namespace: 'kube-system' }],
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'coredns', namespace: 'kube-system' },
      data: { Corefile: corefile },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'coredns', namespace: 'kube-system', labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'coredns',
            dnsPolicy: 'Default',
            priorityClassName: 'system-cluster-critical',
            securityContext: RESTRICTED_POD_SECURITY,
            containers: [
              {
                name: 'coredns',
                image: COREDNS_IMAGE,
                args: ['-conf', '/etc/coredns/Corefile'],
                ports: [
                  { name: 'dns', containerPort: 1053, protocol: 'UDP' },
                  { name: 'dns-tcp', containerPort: 1053, protocol: 'TCP' },
                ],
                readinessProbe: { httpGet: { path: '/ready', port: 8181 }, periodSeconds: 2 },
                livenessProbe: { httpGet: { path: '/health', port: 8080 }, periodSeconds: 10 },
                resources: {
                  requests: { cpu: '20m', memory: '32Mi' },
                  limits: { memory: '128Mi' },
                },
                securityContext: RESTRICTED_CONTAINER_SECURITY,
                volumeMounts: [{ name: 'config', mountPath: '/etc/coredns', readOnly: true }],
              },
            ],
            volumes: [{ name: 'config', configMap: { name: 'coredns' } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system', labels },
      spec: {
        clusterIP: DNS_SERVICE_IP,
        selector: labels,
        ports: [
          { name: 'dns', port: 53, targetPort: 1053, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, targetPort: 1053, protocol: 'TCP' },
        ],
      },
    },
  ];
  // kubectl apply reads a JSON List as well as YAML.
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects });
}
