import { describe, expect, it, vi } from 'vitest';
import { createDnsDiscovery } from './dns-discovery';

describe('createDnsDiscovery', () => {
  it('lists one instance per A record, follows changes and keeps the last set on failure', async () => {
    vi.useFakeTimers();
    try {
      const answers: (string[] | Error)[] = [
        ['10.0.0.2', '10.0.0.1'],
        ['10.0.0.1'],
        new Error('SERVFAIL'),
      ];
      const resolve = vi.fn((hostname: string) => {
        expect(hostname).toBe('orders.bazaar.svc.cluster.local');
        const next = answers.shift() ?? ['10.0.0.3'];
        return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
      });
      const errors: unknown[] = [];
      const discovery = createDnsDiscovery({
        portOf: () => 4002,
        hostnameOf: (service) => `${service}.bazaar.svc.cluster.local`,
        intervalMs: 1000,
        resolve,
        onError: (error) => errors.push(error),
      });
      const watch = await discovery.watch('orders');
      expect(watch.instances()).toEqual([
        {
          service: 'orders',
          id: '10.0.0.1:4002',
          address: 'http://10.0.0.1:4002',
          healthUrl: 'http://10.0.0.1:4002/readyz',
        },
        expect.objectContaining({ id: '10.0.0.2:4002' }),
      ]);
      const changes: string[][] = [];
      watch.onChange((instances) => changes.push(instances.map((instance) => instance.id)));
      await vi.advanceTimersByTimeAsync(1000);
      expect(watch.instances().map((instance) => instance.id)).toEqual(['10.0.0.1:4002']);
      await vi.advanceTimersByTimeAsync(1000);
      expect(errors).toHaveLength(1);
      expect(watch.instances().map((instance) => instance.id)).toEqual(['10.0.0.1:4002']);
      await vi.advanceTimersByTimeAsync(1000);
      expect(changes).toEqual([['10.0.0.1:4002'], ['10.0.0.3:4002']]);
      await discovery.close();
      const calls = resolve.mock.calls.length;
      await vi.advanceTimersByTimeAsync(5000);
      expect(resolve.mock.calls.length).toBe(calls);
    } finally {
      vi.useRealTimers();
    }
  });
});
