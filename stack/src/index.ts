/**
 * The local stack as a library: what tests and tools need to find, start and inspect the real
 * servers (the CLI in cli.ts is the command-line face of the same parts).
 */
export {
  componentSpecs,
  createContext,
  infraUrls,
  localAdmin,
  type ComponentSpec,
  type StackContext,
} from './components';
export { readStackConfig, repoRoot, type ProfileName, type StackConfig } from './config';
export { fetchStatus, type StatusReport } from './control';
export { portOf, type PortName } from './ports';
export { loadOrCreateSecrets, type StackSecrets } from './secrets';
export { ensureServiceUser } from './service-user';
export { reapRecorded, Supervisor, type InstanceStatus } from './supervisor';
export { ensureTools, locateTools, type ToolName } from './tools';
export { describeMachine, writeBenchmarkSection } from './benchmarks-file';
export { freePort, groupCpuSeconds, isAlive, processCpuSeconds, processGroups } from './proc';
