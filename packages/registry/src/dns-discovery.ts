import { resolve4 } from 'node:dns/promises';
import { InstanceSet, type Discovery, type InstanceWatch, type ServiceInstance } from './instances';

/** Resolves a host name to IPv4 addresses (`dns.promises.resolve4` by default). */
export type Resolve4 = (hostname: string) => Promise<string[]>;

/** Options of {@link createDnsDiscovery}. */
export interface DnsDiscoveryOptions {
  /** The port every instance of a service listens on (the headless Service's target port). */
  readonly portOf: (service: string) => number;
  /** The DNS name of a service; `<service>` by default (the pod's search domains complete it). */
  readonly hostnameOf?: (service: string) => string;
  /** How often names are resolved again. Default 5000 ms. */
  readonly intervalMs?: number;
  /** Path of the health endpoint. Default `/readyz`. */
  readonly healthPath?: string;
  readonly resolve?: Resolve4;
  /** Told about resolution failures; the last known set is kept meanwhile. */
  readonly onError?: (error: unknown, service: string) => void;
}

/**
 * Discovery through cluster DNS, for Kubernetes: a headless Service has one A record per ready pod,
 * so resolving `<service>` periodically yields the live instances. Registration is Kubernetes' job
 * (readiness gates the records), so there is no `register`. A failed lookup keeps the last set: a
 * DNS hiccup must not empty the gateway's upstreams.
 */
export function createDnsDiscovery(options: DnsDiscoveryOptions): Discovery {
  const resolve = options.resolve ?? resolve4;
  const hostnameOf = options.hostnameOf ?? ((service: string) => service);
  const intervalMs = options.intervalMs ?? 5000;
  const healthPath = options.healthPath ?? '/readyz';
  const watches = new Set<InstanceWatch>();

  async function watch(service: string): Promise<InstanceWatch> {
    const set = new InstanceSet();
    const port = options.portOf(service);
    const hostname = hostnameOf(service);

    async function refresh(): Promise<void> {
      const addresses = await resolve(hostname);
      set.replace(
        addresses.map((ip): ServiceInstance => ({
          service,
          id: `${ip}:${port}`,
          address: `http://${ip}:${port}`,
          healthUrl: `http://${ip}:${port}${healthPath}`,
        })),
      );
    }

    await refresh().catch((error: unknown) => options.onError?.(error, service));
    const timer = setInterval(() => {
      refresh().catch((error: unknown) => options.onError?.(error, service));
    }, intervalMs);
    timer.unref();
    const handle: InstanceWatch = {
      instances: () => set.list(),
      onChange: (listener) => set.subscribe(listener),
      close() {
        clearInterval(timer);
        watches.delete(handle);
        return Promise.resolve();
      },
    };
    watches.add(handle);
    return handle;
  }

  return {
    watch,
    async close() {
      await Promise.all([...watches].map((handle) => handle.close()));
    },
  };
}
