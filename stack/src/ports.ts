/**
 * Project-owned loopback ports of the `dev` profile. The `test` profile adds an offset (1000 unless
 * BAZAAR_TEST_PORT_OFFSET says otherwise) to each, so a developer's running stack and the test suite's
 * never collide (nor a system-wide PostgreSQL or Redis).
 */
export const devPorts = {
  edge: 8080,
  'edge-tls': 8443,
  gateway: 8000,
  users: 4001,
  orders: 4002,
  payments: 4003,
  'psp-sandbox': 4004,
  notifications: 4005,
  analytics: 4006,
  postgres: 15432,
  mongo: 17017,
  redis: 16379,
  rabbitmq: 15672,
  'rabbitmq-dist': 15673,
  epmd: 14369,
  etcd: 12379,
  'etcd-peer': 12380,
} as const;

export type PortName = keyof typeof devPorts;

export function portOf(config: { readonly portOffset: number }, name: PortName): number {
  return devPorts[name] + config.portOffset;
}
