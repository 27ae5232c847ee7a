import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  componentSpecs,
  createContext,
  ensureServiceUser,
  freePort,
  isAlive,
  infraUrls,
  loadOrCreateSecrets,
  locateTools,
  readStackConfig,
  reapRecorded,
  Supervisor,
  type PortName,
} from '@bazaar/stack';

export type InfraName = 'postgres' | 'mongo' | 'redis' | 'rabbitmq' | 'etcd';

/** Real servers owned by one test: its own data dirs and free ports, so it may stop them at will. */
export interface PrivateServers {
  readonly urls: ReturnType<typeof infraUrls>;
  /** Stops a server and keeps it stopped (no restart) until `start`. */
  stop(name: InfraName): Promise<void>;
  start(name: InfraName): Promise<void>;
  /** The leader pid of a server's process group (its supervisor restarts it if it dies). */
  pid(name: InfraName): number;
  /** Sends a signal to a server's whole process group (SIGSTOP/SIGCONT pause and resume it). */
  signal(name: InfraName, signal: NodeJS.Signals): void;
  /** Stops everything and deletes the data. */
  close(): Promise<void>;
}

const PORTS_OF: Record<InfraName, readonly PortName[]> = {
  postgres: ['postgres'],
  mongo: ['mongo'],
  redis: ['redis'],
  rabbitmq: ['rabbitmq', 'rabbitmq-dist', 'epmd'],
  etcd: ['etcd', 'etcd-peer'],
};

/**
 * Stops and deletes private servers whose test process is gone (it was killed before `close`), so
 * an interrupted run never leaves servers behind.
 */
function reapAbandoned(privateRoot: string): void {
  if (!existsSync(privateRoot)) return;
  for (const entry of readdirSync(privateRoot)) {
    const dir = path.join(privateRoot, entry);
    const owner = Number(readFileSafe(path.join(dir, 'owner.pid')));
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) continue;
    reapRecorded(path.join(dir, 'run', 'children.json'));
    rmSync(dir, { recursive: true, force: true });
  }
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * Starts private copies of the named servers (and what they depend on) with the same component
 * definitions `npm start` uses. The tools must be installed (the integration global setup does it).
 */
export async function startPrivateServers(names: readonly InfraName[]): Promise<PrivateServers> {
  const shared = readStackConfig('test');
  const stateDir = path.join(shared.home, 'private', randomBytes(6).toString('hex'));
  const config = { ...shared, stateDir };
  const wanted = new Set<InfraName>(names);
  if (wanted.has('mongo')) wanted.add('postgres');
  reapAbandoned(path.dirname(stateDir));
  await mkdir(path.join(stateDir, 'run'), { recursive: true });
  await writeFile(path.join(stateDir, 'owner.pid'), `${process.pid}\n`);
  // Every infrastructure port gets a free one, even for servers not started: connection URLs of
  // the whole set are computed together.
  const ports = new Map<PortName, number>();
  for (const port of Object.values(PORTS_OF).flat()) ports.set(port, await freePort());
  const base = createContext(
    config,
    await loadOrCreateSecrets(stateDir),
    locateTools(config),
    await ensureServiceUser(config.isRoot),
  );
  const ctx = {
    ...base,
    port: (name: PortName) => {
      const port = ports.get(name);
      if (port === undefined) throw new Error(`no private port for ${name}`);
      return port;
    },
  };
  const supervisor = new Supervisor({
    specs: componentSpecs.filter((spec) => wanted.has(spec.name as InfraName)),
    ctx,
    logsDir: path.join(stateDir, 'logs'),
    pidFile: path.join(stateDir, 'run', 'children.json'),
    baseEnv: config.childEnv,
  });
  const quiet = () => undefined;
  await supervisor.up([...wanted], quiet);
  const pidOf = (name: InfraName) => {
    const pid = supervisor.status().find((entry) => entry.name === name)?.pid;
    if (pid === undefined || pid === null) throw new Error(`${name} is not running`);
    return pid;
  };
  return {
    urls: infraUrls(ctx),
    stop: (name) => supervisor.stopComponent(name),
    start: (name) => supervisor.up([name], quiet),
    pid: pidOf,
    signal: (name, signal) => process.kill(-pidOf(name), signal),
    async close() {
      await supervisor.down(quiet);
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
