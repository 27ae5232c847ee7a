/** One running copy of a service, as the registry knows it. */
export interface ServiceInstance {
  /** The service's name (`psp-sandbox`), the same word as its folder. */
  readonly service: string;
  /** Unique among the service's instances (`psp-sandbox-2`, a pod name). */
  readonly id: string;
  /** Base URL the instance answers on, e.g. `http://127.0.0.1:4004`. */
  readonly address: string;
  /** Where its readiness is checked, e.g. `http://127.0.0.1:4004/readyz`. */
  readonly healthUrl: string;
}

/** Called with the whole current set each time it changes. */
export type InstancesListener = (instances: readonly ServiceInstance[]) => void;

/** A live view of one service's instances. */
export interface InstanceWatch {
  /** The instances known now, sorted by id. */
  instances(): readonly ServiceInstance[];
  /** Calls `listener` on every change of the set; returns a function that unsubscribes. */
  onChange(listener: InstancesListener): () => void;
  /** Stops watching. */
  close(): Promise<void>;
}

/**
 * Where a service's instances are found: etcd locally ({@link createEtcdRegistry}), cluster DNS in
 * Kubernetes ({@link createDnsDiscovery}). Consumers (the gateway, internal clients) depend on this
 * interface only.
 */
export interface Discovery {
  /** Resolves once the initial set is known; the watch then follows changes. */
  watch(service: string): Promise<InstanceWatch>;
  close(): Promise<void>;
}

/** A registration that is kept alive until closed; shaped as a service-kit `Closer`. */
export interface Registration {
  readonly name: string;
  readonly instance: ServiceInstance;
  /** Withdraws the instance (deletes the key, revokes the lease). Idempotent. */
  close(): Promise<void>;
}

/** A set of instances that tells listeners when it changes. */
export class InstanceSet {
  readonly #byId = new Map<string, ServiceInstance>();
  readonly #listeners = new Set<InstancesListener>();
  #snapshot: readonly ServiceInstance[] = [];

  list(): readonly ServiceInstance[] {
    return this.#snapshot;
  }

  subscribe(listener: InstancesListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Replaces the whole set (an initial list or a resync). */
  replace(instances: Iterable<ServiceInstance>): void {
    const next = new Map<string, ServiceInstance>();
    for (const instance of instances) next.set(instance.id, instance);
    const isSame =
      next.size === this.#byId.size &&
      [...next].every(([id, instance]) => sameInstance(this.#byId.get(id), instance));
    if (isSame) return;
    this.#byId.clear();
    for (const [id, instance] of next) this.#byId.set(id, instance);
    this.#publish();
  }

  upsert(instance: ServiceInstance): void {
    if (sameInstance(this.#byId.get(instance.id), instance)) return;
    this.#byId.set(instance.id, instance);
    this.#publish();
  }

  remove(id: string): void {
    if (this.#byId.delete(id)) this.#publish();
  }

  #publish(): void {
    this.#snapshot = Object.freeze(
      [...this.#byId.values()].sort((a, b) => a.id.localeCompare(b.id)),
    );
    for (const listener of this.#listeners) listener(this.#snapshot);
  }
}

function sameInstance(a: ServiceInstance | undefined, b: ServiceInstance): boolean {
  return (
    a !== undefined &&
    a.service === b.service &&
    a.id === b.id &&
    a.address === b.address &&
    a.healthUrl === b.healthUrl
  );
}
