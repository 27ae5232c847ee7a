export {
  InstanceSet,
  type Discovery,
  type InstancesListener,
  type InstanceWatch,
  type Registration,
  type ServiceInstance,
} from './instances';
export {
  createEtcdRegistry,
  DEFAULT_KEY_PREFIX,
  type EtcdRegistry,
  type EtcdRegistryOptions,
  type RegistryLogger,
} from './etcd-registry';
export { createDnsDiscovery, type DnsDiscoveryOptions, type Resolve4 } from './dns-discovery';
export { registerInstance, registerService, type RegisterServiceOptions } from './register-service';
