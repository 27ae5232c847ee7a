import { describe, expect, it } from 'vitest';
import { readStackConfig } from '../config';
import { statusFrom } from './cli';
import { mountsUnder, STOP_ORDER } from './cluster';
import { cniConfig, containerdConfig, kubeletConfig } from './configs';
import { clusterLayout, NODE_IP, POD_CIDR, REGISTRY } from './layout';
import { leafExtensions, subject } from './pki';

const layout = clusterLayout(readStackConfig('dev', { BAZAAR_HOME: '/srv/bazaar' }));

describe('the local cluster', () => {
  it('stops in the order K8S.md gives: kubelet before the pods go, apiserver before etcd, containerd after the control plane', () => {
    const at = (name: (typeof STOP_ORDER)[number]) => STOP_ORDER.indexOf(name);
    expect(at('kubelet')).toBeLessThan(at('kube-apiserver'));
    expect(at('kube-apiserver')).toBeLessThan(at('etcd'));
    expect(at('kube-apiserver')).toBeLessThan(at('containerd'));
    expect(at('containerd')).toBeLessThan(at('etcd'));
    expect(at('etcd')).toBeLessThan(at('registry'));
    expect(new Set(STOP_ORDER).size).toBe(STOP_ORDER.length);
  });

  it('finds the mounts below its own folders only, deepest first, and decodes spaces', () => {
    const mountinfo = [
      '22 1 8:1 / / rw - ext4 /dev/vda rw',
      '90 22 0:50 / /srv/bazaar/k8s/kubelet/pods/a/volumes/x rw - tmpfs tmpfs rw',
      '91 22 0:51 / /srv/bazaar/k8s/kubelet/pods/a rw - tmpfs tmpfs rw',
      '92 22 0:52 / /srv/bazaar/k8s-cache/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs rw - overlay overlay rw',
      '93 22 0:53 / /srv/bazaar/k8s2 rw - tmpfs tmpfs rw',
      '94 22 0:54 / /srv/bazaar/k8s/with\\040space rw - tmpfs tmpfs rw',
    ].join('\n');
    expect(mountsUnder(mountinfo, [layout.state, layout.cache])).toEqual([
      '/srv/bazaar/k8s-cache/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs',
      '/srv/bazaar/k8s/kubelet/pods/a/volumes/x',
      '/srv/bazaar/k8s/kubelet/pods/a',
      '/srv/bazaar/k8s/with space',
    ]);
  });

  it('pulls from the local registry over plain HTTP and keeps the OOM scores the kubelet asks for', () => {
    const toml = containerdConfig(layout);
    expect(toml).toContain(`[plugins."io.containerd.grpc.v1.cri".registry.mirrors."${REGISTRY}"]`);
    expect(toml).toContain(`endpoint = ["http://${REGISTRY}"]`);
    expect(toml).toContain('restrict_oom_score_adj = true');
    expect(toml).toContain('SystemdCgroup = false');
  });

  it('gives pods addresses from the pod range on one bridge, and the kubelet serves on the node address', () => {
    const cni = JSON.parse(cniConfig(layout)) as {
      plugins: { ipam?: { ranges: { subnet: string }[][] } }[];
    };
    expect(cni.plugins[0]?.ipam?.ranges[0]?.[0]?.subnet).toBe(POD_CIDR);
    const kubelet = kubeletConfig(layout);
    expect(kubelet).toContain(`address: ${NODE_IP}`);
    expect(kubelet).toContain('readOnlyPort: 0');
    expect(kubelet).toContain('anonymous: { enabled: false }');
    expect(kubelet).toContain('failCgroupV1: false');
  });

  it('issues server certificates with their names and client certificates without', () => {
    expect(leafExtensions({ name: 'a', commonName: 'a', altNames: ['IP:10.0.0.1'] })).toContain(
      'subjectAltName = IP:10.0.0.1',
    );
    const client = leafExtensions({ name: 'b', commonName: 'b' });
    expect(client).not.toContain('subjectAltName');
    expect(client).toContain('extendedKeyUsage = clientAuth');
    expect(subject({ commonName: 'system:node:n', organization: 'system:nodes' })).toBe(
      '/O=system:nodes/CN=system:node:n',
    );
  });

  it('reports ready only when every Deployment has all its replicas ready', () => {
    const deployment = (name: string, replicas: number, ready?: number) => ({
      metadata: { name },
      spec: { replicas },
      status: ready === undefined ? {} : { readyReplicas: ready },
    });
    expect(statusFrom(undefined)).toEqual({
      url: 'http://127.0.0.1:18080',
      ready: false,
      deployments: [],
    });
    const ready = statusFrom({ items: [deployment('orders', 2, 2), deployment('edge', 1, 1)] });
    expect(ready.ready).toBe(true);
    expect(ready.deployments.map((d) => d.name)).toEqual(['edge', 'orders']);
    expect(statusFrom({ items: [deployment('orders', 2, 1)] }).ready).toBe(false);
    expect(statusFrom({ items: [deployment('orders', 1)] }).deployments[0]).toEqual({
      name: 'orders',
      ready: 0,
      replicas: 1,
    });
  });
});
