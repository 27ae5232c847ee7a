import { describe, expect, it } from 'vitest';
import { InstanceSet, type ServiceInstance } from './instances';

const instance = (id: string, port = 1): ServiceInstance => ({
  service: 's',
  id,
  address: `http://127.0.0.1:${port}`,
  healthUrl: `http://127.0.0.1:${port}/readyz`,
});

describe('InstanceSet', () => {
  it('publishes sorted snapshots only when the set really changes', () => {
    const set = new InstanceSet();
    const seen: string[][] = [];
    set.subscribe((list) => seen.push(list.map((item) => item.id)));
    set.replace([instance('b'), instance('a')]);
    set.replace([instance('a'), instance('b')]);
    set.upsert(instance('a'));
    set.upsert(instance('a', 2));
    set.remove('zzz');
    set.remove('b');
    expect(seen).toEqual([['a', 'b'], ['a', 'b'], ['a']]);
    expect(set.list()[0]?.address).toBe('http://127.0.0.1:2');
  });
});
