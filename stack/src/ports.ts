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
  /** MailDev: its web UI / REST API (`url` in status) and the SMTP port services send to. */
  mail: 11080,
  'mail-smtp': 11025,
  prometheus: 19090,
  alertmanager: 19093,
  /** Jaeger v2: the query API (`url` in status) and the OTLP receivers services export to. */
  jaeger: 16686,
  'jaeger-otlp-grpc': 14317,
  'jaeger-otlp-http': 14318,
  elasticsearch: 19200,
  'elasticsearch-transport': 19300,
} as const;

export type PortName = keyof typeof devPorts;

export function portOf(config: { readonly portOffset: number }, name: PortName): number {
  return devPorts[name] + config.portOffset;
}
