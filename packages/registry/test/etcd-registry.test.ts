import { randomUUID } from 'node:crypto';
import { eventually, startPrivateServers, testStack, type PrivateServers } from '@bazaar/testing';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdRegistry, registerService, type ServiceInstance } from '../src/index';

const instance = (service: string, id: string, port: number): ServiceInstance => ({
  service,
  id,
  address: `http://127.0.0.1:${port}`,
  healthUrl: `http://127.0.0.1:${port}/readyz`,
});

const idsOf = (instances: readonly ServiceInstance[]) => instances.map((item) => item.id);

describe('etcd registry (test stack)', () => {
  // A fresh prefix per run, so runs never see each other's keys.
  const keyPrefix = `/bazaar-test/${randomUUID()}/`;

  it('lists registered instances, follows additions and removals, and deregisters on close', async () => {
    const registry = createEtcdRegistry({ url: testStack().etcd, keyPrefix });
    try {
      const first = await registry.register(instance('orders', 'orders-1', 5001));
      const watch = await registry.watch('orders');
      expect(idsOf(watch.instances())).toEqual(['orders-1']);
      expect(watch.instances()[0]).toEqual(instance('orders', 'orders-1', 5001));

      const second = await registry.register(instance('orders', 'orders-2', 5002));
      await registry.register(instance('payments', 'payments-1', 5003));
      await eventually(() => (watch.instances().length === 2 ? true : undefined), {
        what: 'second instance seen',
      });
      expect(idsOf(watch.instances())).toEqual(['orders-1', 'orders-2']);

      await first.close();
      await eventually(() => (watch.instances().length === 1 ? true : undefined), {
        what: 'first instance withdrawn',
      });
      expect(idsOf(watch.instances())).toEqual(['orders-2']);
      await second.close();
      await eventually(() => (watch.instances().length === 0 ? true : undefined), {
        what: 'second instance withdrawn',
      });
    } finally {
      await registry.close();
    }
  });

  it('drops an instance whose process died without deregistering once its lease expires', async () => {
    const registry = createEtcdRegistry({ url: testStack().etcd, keyPrefix });
    // A process that dies stops renewing its lease: simulated with a lease nobody keeps alive.
    const raw = new Etcd3({ hosts: testStack().etcd.replace('http://', '') });
    try {
      const lease = raw.lease(2, { autoKeepAlive: false });
      await lease
        .put(`${keyPrefix}users/users-9`)
        .value(JSON.stringify(instance('users', 'users-9', 5009)));
      const watch = await registry.watch('users');
      expect(idsOf(watch.instances())).toEqual(['users-9']);
      await eventually(() => (watch.instances().length === 0 ? true : undefined), {
        timeoutMs: 20_000,
        what: 'expired instance dropped',
      });
    } finally {
      raw.close();
      await registry.close();
    }
  });

  it('registerService registers when ETCD_URL is set and returns closers that withdraw it', async () => {
    expect(
      await registerService({
        etcdUrl: undefined,
        service: 'x',
        instanceId: undefined,
        host: '127.0.0.1',
        port: 1,
      }),
    ).toEqual([]);
    const registry = createEtcdRegistry({ url: testStack().etcd });
    const service = `svc-${randomUUID().slice(0, 8)}`;
    try {
      const closers = await registerService({
        etcdUrl: testStack().etcd,
        service,
        instanceId: `${service}-1`,
        host: '0.0.0.0',
        port: 4321,
      });
      const watch = await registry.watch(service);
      expect(watch.instances()).toEqual([instance(service, `${service}-1`, 4321)]);
      for (const closer of [...closers].reverse()) await closer.close();
      await eventually(() => (watch.instances().length === 0 ? true : undefined), {
        what: 'withdrawn on shutdown',
      });
    } finally {
      await registry.close();
    }
  });
});

describe('etcd registry (private etcd, restarted)', () => {
  let servers: PrivateServers;
  beforeAll(async () => {
    servers = await startPrivateServers(['etcd']);
  });
  afterAll(async () => {
    await servers.close();
  });

  it('keeps the registration and the watch across an etcd restart', async () => {
    const registry = createEtcdRegistry({ url: servers.urls.etcd, leaseTtlSeconds: 5 });
    const other = createEtcdRegistry({ url: servers.urls.etcd, leaseTtlSeconds: 5 });
    try {
      await registry.register(instance('orders', 'orders-1', 5001));
      const watch = await other.watch('orders');
      expect(idsOf(watch.instances())).toEqual(['orders-1']);

      await servers.stop('etcd');
      await servers.start('etcd');

      // Registered after the restart: only a watch that reconnected sees it.
      await eventually(() => other.register(instance('orders', 'orders-2', 5002)), {
        timeoutMs: 20_000,
        what: 'etcd accepting writes again',
      });
      await eventually(
        () => (idsOf(watch.instances()).join() === 'orders-1,orders-2' ? true : undefined),
        { timeoutMs: 20_000, what: 'watch reconnected with both instances' },
      );
      // The first instance's lease is still renewed (or was granted again): it outlives its TTL.
      await new Promise((resolve) => setTimeout(resolve, 6000));
      expect(idsOf(watch.instances())).toEqual(['orders-1', 'orders-2']);
    } finally {
      await other.close();
      await registry.close();
    }
  });
});
