import { ExponentialBackoff } from 'cockatiel';
import { Etcd3, type Lease, type Watcher } from 'etcd3';
import {
  InstanceSet,
  type Discovery,
  type InstanceWatch,
  type Registration,
  type ServiceInstance,
} from './instances';

/** The key prefix under which every instance is registered: `<prefix><service>/<id>`. */
export const DEFAULT_KEY_PREFIX = '/bazaar/services/';

/** Where the registry logs (a pino logger fits). */
export interface RegistryLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}

/** Options of {@link createEtcdRegistry}. */
export interface EtcdRegistryOptions {
  /** etcd client URL(s), e.g. `http://127.0.0.1:12379`. */
  readonly url: string | readonly string[];
  /**
   * Lease time-to-live in seconds: how long a crashed instance stays listed. The client renews it
   * every third of that. Default 10.
   */
  readonly leaseTtlSeconds?: number;
  readonly keyPrefix?: string;
  readonly logger?: RegistryLogger;
  /** Longest wait between two attempts to re-open a watch after etcd went away. Default 2000 ms. */
  readonly maxReconnectDelayMs?: number;
}

/** A {@link Discovery} that can also register instances. */
export interface EtcdRegistry extends Discovery {
  /**
   * Registers `instance` under a lease that is kept alive, and registers it again under a new lease
   * if the lease is lost (etcd was down longer than the TTL). The result is a service-kit `Closer`.
   */
  register(instance: ServiceInstance): Promise<Registration>;
}

const silent: RegistryLogger = { info: () => undefined, warn: () => undefined };

function parseInstance(value: Buffer | string): ServiceInstance | undefined {
  try {
    const parsed = JSON.parse(value.toString()) as Partial<ServiceInstance>;
    if (
      typeof parsed.service === 'string' &&
      typeof parsed.id === 'string' &&
      typeof parsed.address === 'string' &&
      typeof parsed.healthUrl === 'string'
    ) {
      return {
        service: parsed.service,
        id: parsed.id,
        address: parsed.address,
        healthUrl: parsed.healthUrl,
      };
    }
  } catch {
    // A value that is not ours is ignored below, like any malformed entry.
  }
  return undefined;
}

/**
 * Service discovery on etcd: each instance is a key `<prefix><service>/<id>` holding its JSON,
 * attached to a lease, so a process that dies without deregistering disappears after the TTL.
 * Watches list the prefix, then follow it from the next revision; after a reconnect (etcd restarted)
 * they list it again, so no change made while disconnected is missed.
 */
export function createEtcdRegistry(options: EtcdRegistryOptions): EtcdRegistry {
  const prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  const ttl = options.leaseTtlSeconds ?? 10;
  const logger = options.logger ?? silent;
  const hosts = (typeof options.url === 'string' ? [options.url] : [...options.url]).map((url) =>
    url.replace(/^https?:\/\//, ''),
  );
  const client = new Etcd3({
    hosts,
    dialTimeout: 2000,
    faultHandling: {
      // etcd3's default reconnect backoff grows to 30 s; a restarted etcd should be seen within 2 s.
      // (etcd3 types this slot as a backoff instance, the first step of the generator.)
      watchBackoff: new ExponentialBackoff({
        initialDelay: 100,
        maxDelay: options.maxReconnectDelayMs ?? 2000,
      }).next(),
    },
  });
  const open = new Set<{ close(): Promise<void> }>();
  const keyOf = (instance: ServiceInstance) => `${prefix}${instance.service}/${instance.id}`;

  async function register(instance: ServiceInstance): Promise<Registration> {
    const key = keyOf(instance);
    const value = JSON.stringify(instance);
    let lease: Lease | undefined;
    let isClosed = false;
    let retry: NodeJS.Timeout | undefined;

    async function grant(): Promise<void> {
      const next = client.lease(ttl, { autoKeepAlive: true });
      next.on('lost', (error: Error) => {
        // Only the current lease matters; an older one was already replaced.
        if (isClosed || lease !== next) return;
        logger.warn({ err: error, key }, 'registry lease lost; registering again');
        scheduleRegrant(0);
      });
      try {
        await next.put(key).value(value);
      } catch (error) {
        // Stop this lease's keep-alive loop; a later attempt grants a new one.
        void next.revoke().catch(() => undefined);
        throw error;
      }
      lease = next;
    }

    function scheduleRegrant(delayMs: number): void {
      clearTimeout(retry);
      retry = setTimeout(() => {
        if (isClosed) return;
        grant().catch((error: unknown) => {
          logger.warn({ err: error, key }, 'registering again failed; retrying');
          scheduleRegrant(1000);
        });
      }, delayMs);
    }

    await grant();
    logger.info({ key, address: instance.address }, 'registered');
    const registration: Registration = {
      name: 'registry lease',
      instance,
      async close() {
        if (isClosed) return;
        isClosed = true;
        clearTimeout(retry);
        open.delete(registration);
        // Revoking the lease deletes the key with it; a failure leaves the key to expire with its TTL.
        await lease?.revoke().catch((error: unknown) => {
          logger.warn({ err: error, key }, 'could not revoke the lease; the entry expires by TTL');
        });
      },
    };
    open.add(registration);
    return registration;
  }

  async function watch(service: string): Promise<InstanceWatch> {
    const servicePrefix = `${prefix}${service}/`;
    const set = new InstanceSet();
    let isClosed = false;

    async function list(): Promise<string> {
      const response = await client.getAll().prefix(servicePrefix).exec();
      const instances = response.kvs
        .map((kv) => parseInstance(kv.value))
        .filter((instance): instance is ServiceInstance => instance !== undefined);
      set.replace(instances);
      return response.header.revision;
    }

    const revision = await list();
    const watcher: Watcher = await client
      .watch()
      .prefix(servicePrefix)
      .startRevision(String(BigInt(revision) + 1n))
      .create();
    let wasDisconnected = false;
    watcher.on('put', (kv) => {
      const instance = parseInstance(kv.value);
      if (instance !== undefined) set.upsert(instance);
    });
    watcher.on('delete', (kv) => set.remove(kv.key.toString().slice(servicePrefix.length)));
    watcher.on('disconnected', () => {
      if (!wasDisconnected) logger.warn({ service }, 'registry watch disconnected');
      wasDisconnected = true;
    });
    watcher.on('connected', () => {
      if (!wasDisconnected || isClosed) return;
      wasDisconnected = false;
      logger.info({ service }, 'registry watch reconnected; listing again');
      list().catch((error: unknown) =>
        logger.warn({ err: error, service }, 'listing after reconnect failed'),
      );
    });
    watcher.on('error', (error: Error) =>
      logger.warn({ err: error, service }, 'registry watch error'),
    );

    const handle: InstanceWatch & { close(): Promise<void> } = {
      instances: () => set.list(),
      onChange: (listener) => set.subscribe(listener),
      async close() {
        if (isClosed) return;
        isClosed = true;
        open.delete(handle);
        await watcher.cancel().catch(() => undefined);
      },
    };
    open.add(handle);
    return handle;
  }

  return {
    register,
    watch,
    async close() {
      await Promise.allSettled([...open].map((item) => item.close()));
      client.close();
    },
  };
}
