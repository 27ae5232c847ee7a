import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { call, eventually, registerAndLogin } from '@bazaar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceNames } from '../../../../stack/src/build';
import { readStackConfig, repoRoot } from '../../../../stack/src/config';
import { clusterStatus } from '../../../../stack/src/k8s/cli';
import {
  clusterOf,
  docker,
  helm,
  kubectl,
  kubectlChecked,
} from '../../../../stack/src/k8s/cluster';
import {
  RESTRICTED_CONTAINER_SECURITY,
  RESTRICTED_POD_SECURITY,
} from '../../../../stack/src/k8s/configs';
import { CHART_DIR, ensureNamespace } from '../../../../stack/src/k8s/deploy';
import { PUBLIC_URL, RELEASE_NAME, RELEASE_NAMESPACE } from '../../../../stack/src/k8s/layout';
import { startSteadyLoad, summarize, type SteadyLoad } from '../../../../stack/src/k8s/load';
import { runInNetns } from '../../../../stack/src/k8s/netns';
import { run } from '../../../../stack/src/run';

// The live cluster suite of `npm run k8s -- test`, run against the cluster `up` just built: every
// request goes to the public entry on 127.0.0.1:18080 (edge → gateway → services, all in pods).
// The tests run in file order; each one leaves the release as the next expects it.

const cluster = clusterOf(readStackConfig('dev'), (message) => console.log(`  ${message}`));
const E = PUBLIC_URL;
const ns = RELEASE_NAMESPACE;

/** A call to the cluster's public entry (`call` of @bazaar/testing, bound to it). */
const api = <T = Record<string, unknown>>(
  method: string,
  route: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
) => call<T>(E, method, route, options);

interface Order {
  id: string;
  status: string;
  cancelReason?: string;
}
interface Product {
  id: string;
  stock: number;
}

let token = '';
let product: Product;
let knownOrderId = '';

async function placeOrder(card: string): Promise<Order> {
  const placed = await api<Order>('POST', '/v1/orders', {
    token,
    headers: { 'idempotency-key': randomUUID() },
    body: { items: [{ productId: product.id, quantity: 1 }], payment: { token: card } },
  });
  expect(placed.status, JSON.stringify(placed.body)).toBe(202);
  return eventually(
    async () => {
      const order = await api<Order>('GET', `/v1/orders/${placed.body.id}`, { token });
      return order.body.status === 'PENDING' ? undefined : order.body;
    },
    { what: `order ${placed.body.id} terminal`, timeoutMs: 60_000 },
  );
}

async function podsOf(component: string): Promise<{ name: string; ip: string; image: string }[]> {
  const out = await kubectlChecked(cluster, [
    'get',
    'pods',
    '-n',
    ns,
    '-l',
    `app.kubernetes.io/name=${component}`,
    '--field-selector=status.phase=Running',
    '-o',
    'json',
  ]);
  const list = JSON.parse(out) as {
    items: {
      metadata: { name: string; deletionTimestamp?: string };
      status: { podIP: string; containerStatuses?: { imageID: string; ready: boolean }[] };
    }[];
  };
  return list.items
    .filter((pod) => pod.metadata.deletionTimestamp === undefined)
    .map((pod) => ({
      name: pod.metadata.name,
      ip: pod.status.podIP,
      image: pod.status.containerStatuses?.[0]?.imageID ?? '',
    }));
}

async function rollout(component: string) {
  await kubectlChecked(cluster, [
    'rollout',
    'status',
    '-n',
    ns,
    `deployment/${component}`,
    '--timeout=300s',
  ]);
}

/** `helm upgrade --reuse-values` of the release with `args` (sets, flags), waiting for it. */
function upgradeRelease(...args: string[]) {
  return helm(cluster, [
    'upgrade',
    RELEASE_NAME,
    CHART_DIR,
    '-n',
    ns,
    '--reuse-values',
    ...args,
    '--wait',
    '--timeout',
    '5m',
  ]);
}

function startLoad(): SteadyLoad {
  return startSteadyLoad({
    baseUrl: E,
    token,
    productId: product.id,
    readPath: `/v1/orders/${knownOrderId}`,
    readers: 4,
    buyers: 2,
    thinkMs: 50,
    maxDurationMs: 300_000,
  });
}

function report(what: string, load: SteadyLoad, from = 0) {
  const summary = summarize(load.samples, from);
  console.log(
    `  ${what}: ${summary.requests} requests (${JSON.stringify(summary.byKind)}), ${summary.failures.length} failed`,
  );
  for (const failure of summary.failures.slice(0, 10)) {
    console.log(
      `    failed at +${failure.at - (load.samples[0]?.at ?? 0)} ms: ${failure.kind} ${failure.status} ${failure.error ?? ''}`,
    );
  }
  return summary;
}

beforeAll(async () => {
  token = (await registerAndLogin(E)).tokens.accessToken;
  const products = await api<{ items: Product[] }>('GET', '/v1/products?limit=50');
  expect(products.status).toBe(200);
  product = [...products.body.items].sort((a, b) => b.stock - a.stock)[0] as Product;
});

describe('the release on a real cluster', () => {
  it('is installed and every Deployment is available', async () => {
    const status = await clusterStatus(cluster);
    expect(status.url).toBe('http://127.0.0.1:18080');
    expect(status.deployments.map((d) => d.name)).toEqual(
      expect.arrayContaining([...serviceNames(), 'edge']),
    );
    expect(status.ready).toBe(true);
  });

  it('passes a server-side dry-run with warnings as errors in a namespace enforcing "restricted"', async () => {
    await ensureNamespace(cluster, 'bazaar-dryrun');
    const rendered = await helm(cluster, [
      'template',
      RELEASE_NAME,
      CHART_DIR,
      '--namespace',
      'bazaar-dryrun',
      '-f',
      cluster.layout.imagesValues,
    ]);
    expect(rendered.code, rendered.stderr).toBe(0);
    const applied = await kubectl(
      cluster,
      [
        'apply',
        '--server-side',
        '--dry-run=server',
        '--warnings-as-errors',
        '-n',
        'bazaar-dryrun',
        '-f',
        '-',
      ],
      rendered.stdout,
    );
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(
      /deployment\.apps\/orders serverside-applied \(server dry run\)/,
    );
  });

  it('refuses a privileged pod in that namespace', async () => {
    const manifest = readFileSync(
      path.join(repoRoot, 'deploy', 'k8s', 'test', 'privileged-pod.yaml'),
      'utf8',
    );
    const applied = await kubectl(
      cluster,
      ['apply', '--server-side', '--dry-run=server', '-n', 'bazaar-dryrun', '-f', '-'],
      manifest,
    );
    expect(applied.code).not.toBe(0);
    expect(applied.stderr).toMatch(/violates PodSecurity "restricted/);
    await kubectl(cluster, ['delete', 'namespace', 'bazaar-dryrun', '--wait=false']);
  });

  it('runs the checkout saga through http://127.0.0.1:18080: approve, decline, payment, notification', async () => {
    const confirmed = await placeOrder('tok_visa');
    expect(confirmed.status).toBe('CONFIRMED');
    knownOrderId = confirmed.id;
    const payments = await eventually(
      async () => {
        const reply = await api<{ items: { status: string }[] }>(
          'GET',
          `/v1/payments?orderId=${confirmed.id}`,
          { token },
        );
        return reply.body.items.some((p) => p.status === 'CAPTURED') ? reply.body.items : undefined;
      },
      { what: 'the capture', timeoutMs: 60_000 },
    );
    expect(payments.length).toBe(1);
    const declined = await placeOrder('tok_chargeDeclined');
    expect(declined.status).toBe('CANCELLED');
    expect(declined.cancelReason).toBe('PAYMENT_DECLINED');
    const inbox = await eventually(
      async () => {
        const reply = await api<{
          items: { subject?: string; title?: string; orderId?: string }[];
        }>('GET', '/v1/notifications', { token });
        const text = JSON.stringify(reply.body);
        return text.includes(confirmed.id) ? reply.body.items : undefined;
      },
      { what: 'the confirmation in the inbox', timeoutMs: 60_000 },
    );
    expect(inbox.length).toBeGreaterThan(0);
  });

  it('lets the admin named at up sign in and read the analytics', async () => {
    const email = cluster.config.passthrough.ADMIN_EMAIL ?? '';
    expect(email).not.toBe('');
    const login = await api<{ accessToken: string }>('POST', '/v1/auth/login', {
      body: { email, password: cluster.config.passthrough.ADMIN_PASSWORD },
    });
    expect(login.status).toBe(200);
    const summary = await eventually(
      async () => {
        const reply = await api<{ ordersConfirmed: number }>('GET', '/v1/analytics/summary', {
          token: login.body.accessToken,
        });
        return reply.status === 200 && reply.body.ordersConfirmed >= 1 ? reply.body : undefined;
      },
      { what: 'analytics sees the confirmed order', timeoutMs: 60_000 },
    );
    expect(summary.ordersConfirmed).toBeGreaterThanOrEqual(1);
  });

  it("passes helm test (the chart's own checkout smoke)", async () => {
    const result = await helm(cluster, ['test', RELEASE_NAME, '-n', ns, '--timeout', '5m']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(result.stdout).toMatch(/Phase:\s+Succeeded/);
  });

  it('listens on no host address but 127.0.0.1, and nothing in its namespace reaches outside', async () => {
    // Every listening socket in the host's namespace that belongs to a process of the cluster.
    const hostNet = readlinkSync('/proc/self/ns/net');
    const ours = new Set(
      readdirSync('/proc')
        .filter((entry) => /^\d+$/.test(entry))
        .filter((pid) => {
          try {
            const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
            return (
              cmdline.includes(`${cluster.layout.state}/`) &&
              readlinkSync(`/proc/${pid}/ns/net`) === hostNet
            );
          } catch {
            return false;
          }
        }),
    );
    const sockets = (await run('ss', ['-Hltnup'])).stdout
      .split('\n')
      .filter((line) => [...line.matchAll(/pid=(\d+)/g)].some((match) => ours.has(match[1] ?? '')))
      .map((line) => line.trim().split(/\s+/)[4] ?? '');
    expect(sockets).toContain('127.0.0.1:18080');
    expect(sockets.filter((address) => !address.startsWith('127.0.0.1:'))).toEqual([]);
    // 203.0.113.0/24 is TEST-NET-3: never routed anywhere, so this probe cannot leave the machine.
    const probe =
      "const s=require('net').connect({host:'203.0.113.7',port:80});" +
      "s.on('connect',()=>{console.log('connected');process.exit(1)});" +
      "s.on('error',(e)=>{console.log(e.code);process.exit(0)});setTimeout(()=>{console.log('timeout');process.exit(2)},3000)";
    const fromNamespace = await runInNetns(process.execPath, ['-e', probe]);
    expect(fromNamespace.code, fromNamespace.stdout).toBe(0);
    expect(fromNamespace.stdout.trim()).toMatch(/^(ENETUNREACH|EHOSTUNREACH|EINVAL)$/);
    // And from a pod: its packets are routed by the namespace, whose default route is a black hole
    // (a forwarded packet is dropped without an answer, so the pod sees an error or a timeout).
    const images = JSON.parse(readFileSync(cluster.layout.imagesJson, 'utf8')) as {
      name: string;
      ref: string;
      digest?: string;
    }[];
    const users = images.find((image) => image.name === 'users');
    const image = `${(users?.ref ?? '').replace(/:[^:/]+$/, '')}@${users?.digest ?? ''}`;
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'egress-probe', namespace: ns },
      spec: {
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        securityContext: RESTRICTED_POD_SECURITY,
        containers: [
          {
            name: 'probe',
            image,
            command: ['node', '-e', probe],
            securityContext: RESTRICTED_CONTAINER_SECURITY,
          },
        ],
      },
    };
    await kubectlChecked(cluster, ['apply', '-f', '-'], JSON.stringify(pod));
    const phase = await eventually(
      async () => {
        const out = await kubectlChecked(cluster, [
          'get',
          'pod',
          '-n',
          ns,
          'egress-probe',
          '-o',
          'jsonpath={.status.phase}',
        ]);
        return out === 'Succeeded' || out === 'Failed' ? out : undefined;
      },
      { what: 'the egress probe pod ends', timeoutMs: 60_000 },
    );
    const logs = (await kubectlChecked(cluster, ['logs', '-n', ns, 'egress-probe'])).trim();
    await kubectlChecked(cluster, ['delete', 'pod', '-n', ns, 'egress-probe', '--wait=false']);
    expect(logs, phase).toMatch(/^(ENETUNREACH|EHOSTUNREACH|EINVAL|ETIMEDOUT|timeout)$/);
  });
});

describe('releases without a failed request', () => {
  let load: SteadyLoad | undefined;
  afterAll(async () => {
    await load?.stop();
  });

  it('rolls orders to a new image under a steady load of reads and orders with 0 failed requests', async () => {
    const images = JSON.parse(readFileSync(cluster.layout.imagesJson, 'utf8')) as {
      name: string;
      ref: string;
    }[];
    const current = images.find((image) => image.name === 'orders');
    expect(current).toBeDefined();
    // A new image of the same code: one more layer of metadata gives it a new digest.
    const next = `${(current?.ref ?? '').replace(/:[^:/]+$/, '')}:rollout-${Date.now()}`;
    const built = await docker(
      cluster,
      ['build', '--network', 'none', '-t', next, '-'],
      `FROM ${current?.ref}\nLABEL bazaar.rollout="${randomUUID()}"\n`,
    );
    expect(built.code, built.stderr).toBe(0);
    const pushed = await docker(cluster, ['push', next]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed.stdout)?.[1];
    expect(digest).toBeDefined();
    const before = await podsOf('orders');
    load = startLoad();
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const upgraded = await upgradeRelease('--set', `components.orders.image.digest=${digest}`);
    expect(upgraded.code, upgraded.stderr).toBe(0);
    await rollout('orders');
    await new Promise((resolve) => setTimeout(resolve, 5000));
    await load.stop();
    const after = await podsOf('orders');
    expect(after.every((pod) => pod.image.endsWith(digest ?? '-'))).toBe(true);
    expect(after.some((pod) => before.some((old) => old.name === pod.name))).toBe(false);
    const summary = report('rolling update of orders', load);
    expect(summary.byKind.order ?? 0).toBeGreaterThan(20);
    expect(summary.byKind.read ?? 0).toBeGreaterThan(100);
    expect(summary.failures).toEqual([]);
    load = undefined;
  });

  it('scales orders to 3 replicas and the requests reach all three', async () => {
    await kubectlChecked(cluster, ['scale', '-n', ns, 'deployment/orders', '--replicas=3']);
    await rollout('orders');
    const pods = await podsOf('orders');
    expect(pods).toHaveLength(3);
    const served = async (ip: string) => {
      const script =
        'fetch(process.argv[1]).then((r)=>r.text()).then((t)=>{let n=0;for(const l of t.split("\\n"))' +
        "if(l.startsWith('http_server_request_duration_seconds_count')&&l.includes('/v1/orders'))n+=Number(l.split(' ').pop());console.log(n)})";
      const result = await runInNetns(process.execPath, [
        '-e',
        script,
        `http://${ip}:8080/metrics`,
      ]);
      return Number(result.stdout.trim());
    };
    const before = await Promise.all(pods.map((pod) => served(pod.ip)));
    // The gateway re-resolves the headless Service every 5 s; give it time to see the new pods.
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    load = startLoad();
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    await load.stop();
    const after = await Promise.all(pods.map((pod) => served(pod.ip)));
    const counts = after.map((count, i) => count - (before[i] ?? 0));
    console.log(`  requests per orders pod: ${counts.join(', ')}`);
    expect(counts.every((count) => count > 0)).toBe(true);
    expect(report('scaled to 3', load).failures).toEqual([]);
    load = undefined;
  });

  it('loses no request 2 s after one orders pod is deleted under load', async () => {
    const [victim] = await podsOf('orders');
    load = startLoad();
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const deletedAt = Date.now();
    await kubectlChecked(cluster, ['delete', 'pod', '-n', ns, victim?.name ?? '', '--wait=false']);
    await new Promise((resolve) => setTimeout(resolve, 25_000));
    await load.stop();
    const summary = report('pod deletion (after 2 s)', load, deletedAt + 2000);
    report('pod deletion (whole run)', load);
    expect(summary.requests).toBeGreaterThan(100);
    expect(summary.failures).toEqual([]);
    await rollout('orders');
    load = undefined;
  });
});

describe('the release lifecycle', () => {
  it('upgrades with changed values, rolls back, and uninstalls leaving nothing of the release', async () => {
    const envOf = async () =>
      JSON.parse(
        await kubectlChecked(cluster, ['get', 'configmap', '-n', ns, 'orders', '-o', 'json']),
      ) as {
        data: Record<string, string>;
      };
    const revision = async () =>
      (
        JSON.parse(
          (await helm(cluster, ['status', RELEASE_NAME, '-n', ns, '-o', 'json'])).stdout,
        ) as { version: number }
      ).version;
    const before = await revision();
    expect((await envOf()).data.LOG_LEVEL).toBe('info');
    const upgraded = await upgradeRelease(
      // `kubectl scale` above owns .spec.replicas now; the release takes it back (server-side apply).
      '--force-conflicts',
      '--set',
      'components.orders.env.LOG_LEVEL=debug',
    );
    expect(upgraded.code, upgraded.stderr).toBe(0);
    expect(await revision()).toBe(before + 1);
    expect((await envOf()).data.LOG_LEVEL).toBe('debug');
    const rolledBack = await helm(cluster, [
      'rollback',
      RELEASE_NAME,
      String(before),
      '-n',
      ns,
      '--wait',
      '--timeout',
      '5m',
    ]);
    expect(rolledBack.code, rolledBack.stderr).toBe(0);
    expect((await envOf()).data.LOG_LEVEL).toBe('info');
    expect((await placeOrder('tok_visa')).status).toBe('CONFIRMED');

    const uninstalled = await helm(cluster, [
      'uninstall',
      RELEASE_NAME,
      '-n',
      ns,
      '--wait',
      '--timeout',
      '5m',
    ]);
    expect(uninstalled.code, uninstalled.stderr).toBe(0);
    const left = await eventually(
      async () => {
        const out = await kubectlChecked(cluster, [
          'get',
          'all,configmap,secret,serviceaccount,networkpolicy,poddisruptionbudget,horizontalpodautoscaler,job,persistentvolumeclaim,role,rolebinding',
          '-n',
          ns,
          '-o',
          'name',
        ]);
        const names = out
          .split('\n')
          .filter(Boolean)
          // What Kubernetes itself puts in every namespace.
          .filter(
            (name) => !['configmap/kube-root-ca.crt', 'serviceaccount/default'].includes(name),
          );
        return names.length === 0 ? names : undefined;
      },
      { what: 'nothing of the release left', timeoutMs: 120_000 },
    );
    expect(left).toEqual([]);
  });
});
