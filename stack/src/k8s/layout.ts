import path from 'node:path';
import type { StackConfig } from '../config';

/**
 * The addresses of the local cluster. They exist only inside the cluster's own network namespace
 * (K8S.md): the host reaches the cluster through what `up` forwards to 127.0.0.1, nothing else.
 */
export const NETNS = 'bazaar-k8s';
export const NODE_NAME = 'bazaar-node';
/** The node's address sits on a veth pair whose both ends are in the namespace (no `dummy` here). */
export const NODE_IP = '10.250.0.1';
export const NODE_CIDR = '10.250.0.0/24';
export const POD_CIDR = '10.244.0.0/24';
export const SERVICE_CIDR = '10.96.0.0/16';
export const KUBERNETES_SERVICE_IP = '10.96.0.1';
export const DNS_SERVICE_IP = '10.96.0.10';
export const CLUSTER_DOMAIN = 'cluster.local';
/** The registry, as dockerd and containerd (both in the namespace) see it. */
export const REGISTRY = '127.0.0.1:5000';
/** The release's namespace, labelled to enforce Pod Security "restricted". */
export const RELEASE_NAMESPACE = 'bazaar';
export const RELEASE_NAME = 'bazaar';
/** The cluster's public entry on the host: the same API as the local edge on :8080. */
export const PUBLIC_PORT = 18080;
export const PUBLIC_URL = `http://127.0.0.1:${PUBLIC_PORT}`;

/**
 * Where the cluster keeps its files. `state` goes with `down`; `cache` (images, registry blobs,
 * containerd's content) survives it, so a second `up` does not rebuild or re-pull what it had.
 */
export interface ClusterLayout {
  readonly state: string;
  readonly cache: string;
  readonly pki: string;
  readonly run: string;
  readonly logs: string;
  readonly kubeletRoot: string;
  readonly containerdSocket: string;
  readonly dockerSocket: string;
  readonly edgeSocket: string;
  readonly adminKubeconfig: string;
  readonly pidsFile: string;
  readonly sysctlsFile: string;
  readonly imagesJson: string;
  readonly imagesValues: string;
}

export function clusterLayout(config: StackConfig): ClusterLayout {
  const state = path.join(config.home, 'k8s');
  const run = path.join(state, 'run');
  return {
    state,
    cache: path.join(config.home, 'k8s-cache'),
    pki: path.join(state, 'pki'),
    run,
    logs: path.join(state, 'logs'),
    kubeletRoot: path.join(state, 'kubelet'),
    containerdSocket: path.join(run, 'containerd', 'containerd.sock'),
    dockerSocket: path.join(run, 'docker.sock'),
    edgeSocket: path.join(run, 'edge.sock'),
    adminKubeconfig: path.join(state, 'admin.kubeconfig'),
    pidsFile: path.join(run, 'pids.json'),
    sysctlsFile: path.join(state, 'sysctls.json'),
    imagesJson: path.join(state, 'images.json'),
    imagesValues: path.join(state, 'images.values.yaml'),
  };
}
