import { createEtcdRegistry, type RegistryLogger } from './etcd-registry';
import type { Registration } from './instances';

/** What {@link registerService} needs, all from the service's config. */
export interface RegisterServiceOptions {
  /** `ETCD_URL`; when undefined nothing is registered. */
  readonly etcdUrl: string | undefined;
  readonly service: string;
  /** `SERVICE_INSTANCE_ID`; `<service>-<port>` when undefined. */
  readonly instanceId: string | undefined;
  /** Host and port the service listens on (`RunningService.port` when `PORT=0`). */
  readonly host: string;
  readonly port: number;
  readonly logger?: RegistryLogger;
  readonly leaseTtlSeconds?: number;
}

/**
 * Registers a service instance when `ETCD_URL` is configured, and returns service-kit closers that
 * withdraw it (list them last in `onShutdown`, so the lease is withdrawn first). Without `ETCD_URL`
 * (Kubernetes: DNS does discovery) it returns no closers.
 *
 * @example
 * ```ts
 * const running = await runService({ app, config, logger, telemetry, onShutdown: closers });
 * closers.push(...(await registerService({ etcdUrl: config.ETCD_URL, service, ... })));
 * ```
 */
export async function registerService(
  options: RegisterServiceOptions,
): Promise<{ name: string; close(): Promise<void> }[]> {
  if (options.etcdUrl === undefined) return [];
  const registry = createEtcdRegistry({
    url: options.etcdUrl,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.leaseTtlSeconds === undefined ? {} : { leaseTtlSeconds: options.leaseTtlSeconds }),
  });
  // 0.0.0.0 is where we listen, not an address anyone can reach us on.
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  const address = `http://${host.includes(':') ? `[${host}]` : host}:${options.port}`;
  let registration: Registration;
  try {
    registration = await registry.register({
      service: options.service,
      id: options.instanceId ?? `${options.service}-${options.port}`,
      address,
      healthUrl: `${address}/readyz`,
    });
  } catch (error) {
    await registry.close();
    throw error;
  }
  return [
    { name: 'registry client', close: () => registry.close() },
    { name: 'registry lease', close: () => registration.close() },
  ];
}

/** The configuration fields every service has that registration reads. */
export interface RegistrationConfig {
  readonly ETCD_URL?: string | undefined;
  readonly SERVICE_INSTANCE_ID?: string | undefined;
  readonly HOST: string;
}

/**
 * {@link registerService} for a service's own configuration: the one line a `main.ts` needs after
 * `runService` has bound its port.
 */
export function registerInstance(
  service: string,
  config: RegistrationConfig,
  port: number,
  logger?: RegistryLogger,
): Promise<{ name: string; close(): Promise<void> }[]> {
  return registerService({
    etcdUrl: config.ETCD_URL,
    service,
    instanceId: config.SERVICE_INSTANCE_ID,
    host: config.HOST,
    port,
    ...(logger === undefined ? {} : { logger }),
  });
}
