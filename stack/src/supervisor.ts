import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ComponentSpec, Slot, StackContext } from './components';
import { freePort, groupMemory, isAlive, processGroups, signalGroup } from './proc';

export type InstanceState =
  'starting' | 'ready' | 'unhealthy' | 'backoff' | 'stopping' | 'stopped' | 'failed';

/** One line of `npm run status -- --json` (ARCHITECTURE.md fixes name, state, url, pid). */
export interface InstanceStatus {
  readonly name: string;
  readonly instance: number;
  readonly state: InstanceState;
  readonly url: string;
  readonly pid: number | null;
  readonly port: number;
  readonly restarts: number;
  readonly uptimeSeconds: number | null;
  /** Resident memory of the process and its children (shared pages counted in each). */
  readonly rssBytes: number;
  /** Proportional resident memory: shared pages divided among sharers, so totals add up. */
  readonly pssBytes: number;
  readonly lastExit: string | null;
}

export type Progress = (message: string) => void;

export interface SupervisorOptions {
  readonly specs: readonly ComponentSpec[];
  readonly ctx: StackContext;
  readonly logsDir: string;
  /** Where live pids are recorded, so a crashed supervisor's children can be found and stopped. */
  readonly pidFile: string;
  readonly log?: (event: string, fields: Record<string, unknown>) => void;
  readonly probeIntervalMs?: number;
  readonly backoff?: {
    readonly initialMs: number;
    readonly maxMs: number;
    readonly resetAfterMs: number;
  };
  /** Extra environment every process gets (e.g. PATH); launches add their own on top. */
  readonly baseEnv?: Readonly<Record<string, string>>;
}

const MAX_INSTANCES = 16;
const PROBE_TIMEOUT_MS = 1_000;

class Instance {
  state: InstanceState = 'stopped';
  child: ChildProcess | undefined;
  restarts = 0;
  consecutiveFailures = 0;
  startedAt: number | undefined;
  lastExit: string | null = null;
  restartTimer: NodeJS.Timeout | undefined;
  probing = false;
  stopping = false;
  unhealthySince: number | undefined;
  fingerprint: string | undefined;
  exited: Promise<void> = Promise.resolve();

  constructor(
    readonly spec: ComponentSpec,
    readonly slot: Slot,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid !== undefined &&
      this.child.exitCode === null &&
      this.child.signalCode === null
      ? this.child.pid
      : undefined;
  }
}

/** Recorded process groups from a supervisor that may have died without stopping its children. */
export interface RecordedProcess {
  readonly name: string;
  readonly pid: number;
  readonly command: string;
}

/** Stops process groups a previous supervisor left behind (it was killed, say). */
export function reapRecorded(pidFile: string): RecordedProcess[] {
  let recorded: RecordedProcess[];
  try {
    recorded = JSON.parse(readFileSync(pidFile, 'utf8')) as RecordedProcess[];
  } catch {
    return [];
  }
  const reaped: RecordedProcess[] = [];
  for (const entry of recorded) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry.pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    // The pid may have been reused by an unrelated process: only stop what we started.
    if (!argv.includes(entry.command)) continue;
    signalGroup(entry.pid, 'SIGKILL');
    reaped.push(entry);
  }
  writeFileSync(pidFile, '[]\n');
  return reaped;
}

/**
 * A small process supervisor: starts components in dependency order and waits until each is
 * ready, restarts any that dies (exponential backoff), scales services, and stops everything
 * (each process and its whole process group) in reverse order.
 */
export class Supervisor {
  private readonly instances = new Map<string, Instance[]>();
  private readonly specs: Map<string, ComponentSpec>;
  private readonly probeIntervalMs: number;
  private readonly backoff: { initialMs: number; maxMs: number; resetAfterMs: number };
  private monitor: NodeJS.Timeout | undefined;
  private shuttingDown = false;

  constructor(private readonly options: SupervisorOptions) {
    this.specs = new Map(options.specs.map((spec) => [spec.name, spec]));
    this.probeIntervalMs = options.probeIntervalMs ?? 1_000;
    this.backoff = options.backoff ?? { initialMs: 250, maxMs: 5_000, resetAfterMs: 30_000 };
    mkdirSync(options.logsDir, { recursive: true });
    mkdirSync(path.dirname(options.pidFile), { recursive: true });
  }

  /** Components grouped in start order: each level depends only on earlier levels. */
  levels(names: readonly string[] = [...this.specs.keys()]): ComponentSpec[][] {
    const selected = new Set(names);
    const depth = new Map<string, number>();
    const visit = (name: string, trail: readonly string[]): number => {
      const known = depth.get(name);
      if (known !== undefined) return known;
      if (trail.includes(name))
        throw new Error(`dependency cycle: ${[...trail, name].join(' -> ')}`);
      const spec = this.specs.get(name);
      if (spec === undefined) throw new Error(`unknown component: ${name}`);
      const deps = spec.dependsOn.filter((dep) => selected.has(dep));
      const level =
        deps.length === 0 ? 0 : 1 + Math.max(...deps.map((dep) => visit(dep, [...trail, name])));
      depth.set(name, level);
      return level;
    };
    const result: ComponentSpec[][] = [];
    for (const name of selected) {
      const level = visit(name, []);
      (result[level] ??= []).push(this.specs.get(name) as ComponentSpec);
    }
    return result.filter((level) => level.length > 0);
  }

  /**
   * Brings the named components (default: all) to ready, in dependency order, and returns when all
   * are. Already-ready components are left alone unless their code changed (then restarted).
   */
  async up(names: readonly string[] | undefined, progress: Progress): Promise<void> {
    this.shuttingDown = false;
    this.startMonitor();
    // Each component starts as soon as its own dependencies are ready (no level-wide barrier).
    const ready = new Map<string, Promise<void>>();
    for (const level of this.levels(names)) {
      for (const spec of level) {
        const deps = spec.dependsOn.map((dep) => ready.get(dep)).filter((dep) => dep !== undefined);
        ready.set(
          spec.name,
          Promise.all(deps).then(() => this.ensureUp(spec, progress)),
        );
      }
    }
    await Promise.all(ready.values());
  }

  private async ensureUp(spec: ComponentSpec, progress: Progress): Promise<void> {
    let instances = this.instances.get(spec.name) ?? [];
    if (instances.length === 0) {
      progress(`starting ${spec.name}`);
      await spec.prepare?.(this.options.ctx);
      instances = [new Instance(spec, { index: 0, port: this.options.ctx.port(spec.port) })];
      this.instances.set(spec.name, instances);
      this.launch(instances[0] as Instance);
    } else {
      const fingerprint = spec.fingerprint?.();
      for (const instance of instances) {
        if (
          fingerprint !== undefined &&
          instance.fingerprint !== fingerprint &&
          instance.state !== 'stopped'
        ) {
          progress(`restarting ${spec.name}#${instance.slot.index + 1}: its code changed`);
          await this.stopInstance(instance);
          this.launch(instance);
        } else if (instance.state === 'stopped' || instance.state === 'failed') {
          this.launch(instance);
        }
      }
    }
    const started = Date.now();
    await Promise.all(instances.map((instance) => this.waitReady(instance)));
    await spec.afterReady?.(this.options.ctx);
    progress(`ready    ${spec.name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }

  private launch(instance: Instance): void {
    const { spec, slot } = instance;
    const { ctx } = this.options;
    instance.stopping = false;
    instance.state = 'starting';
    instance.startedAt = Date.now();
    instance.fingerprint = spec.fingerprint?.();
    let launch;
    try {
      launch = spec.launch(ctx, slot);
    } catch (error) {
      instance.state = 'failed';
      instance.lastExit = (error as Error).message;
      return;
    }
    const logFd = openSync(this.logFile(spec.name, slot.index), 'a');
    const user = launch.asServiceUser ? ctx.serviceUser : undefined;
    let child: ChildProcess;
    try {
      child = spawn(launch.command, [...launch.args], {
        cwd: launch.cwd ?? ctx.config.stateDir,
        env: { ...this.options.baseEnv, ...launch.env },
        // Its own process group: stopping it stops its children too, and no orphan is left.
        detached: true,
        stdio: ['ignore', logFd, logFd],
        ...(user === undefined ? {} : { uid: user.uid, gid: user.gid }),
      });
    } finally {
      closeSync(logFd);
    }
    instance.child = child;
    instance.exited = new Promise((resolve) => {
      child.once('error', (error) => {
        instance.lastExit = error.message;
      });
      child.once('close', (code, signal) => {
        this.onExit(instance, child, code, signal);
        resolve();
      });
    });
    this.options.log?.('spawned', {
      name: spec.name,
      instance: slot.index + 1,
      pid: child.pid,
      port: slot.port,
    });
    this.recordPids();
  }

  private onExit(
    instance: Instance,
    child: ChildProcess,
    code: number | null,
    signal: string | null,
  ) {
    if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
    if (instance.child !== child) return;
    const { spec, slot } = instance;
    instance.lastExit =
      instance.lastExit ?? (signal === null ? `exit code ${code}` : `signal ${signal}`);
    if (instance.stopping || this.shuttingDown) {
      instance.state = 'stopped';
      this.recordPids();
      return;
    }
    const ranFor = Date.now() - (instance.startedAt ?? Date.now());
    instance.consecutiveFailures =
      ranFor > this.backoff.resetAfterMs ? 1 : instance.consecutiveFailures + 1;
    instance.restarts += 1;
    const delay = Math.min(
      this.backoff.initialMs * 2 ** (instance.consecutiveFailures - 1),
      this.backoff.maxMs,
    );
    instance.state = 'backoff';
    this.options.log?.('exited', {
      name: spec.name,
      instance: slot.index + 1,
      code,
      signal,
      restartInMs: delay,
    });
    instance.restartTimer = setTimeout(() => {
      instance.restartTimer = undefined;
      instance.lastExit = null;
      if (!instance.stopping && !this.shuttingDown) this.launch(instance);
    }, delay);
    this.recordPids();
  }

  private async probeOnce(instance: Instance): Promise<boolean> {
    if (instance.pid === undefined) return false;
    try {
      await instance.spec.probe(
        this.options.ctx,
        instance.slot,
      )(AbortSignal.timeout(PROBE_TIMEOUT_MS));
      instance.unhealthySince = undefined;
      if (instance.state === 'starting' || instance.state === 'unhealthy') {
        instance.state = 'ready';
        this.options.log?.('ready', {
          name: instance.spec.name,
          instance: instance.slot.index + 1,
        });
      }
      return true;
    } catch {
      if (instance.state === 'ready') {
        instance.state = 'unhealthy';
        instance.unhealthySince = Date.now();
        this.options.log?.('unhealthy', {
          name: instance.spec.name,
          instance: instance.slot.index + 1,
        });
      }
      this.restartIfWedged(instance);
      return false;
    }
  }

  /**
   * A process that is up but has failed its probe for too long is wedged (seen: FerretDB after its
   * PostgreSQL was killed): kill it, and the exit handler starts it again.
   */
  private restartIfWedged(instance: Instance): void {
    const limit = instance.spec.restartWhenUnhealthyForMs;
    const pid = instance.pid;
    if (limit === undefined || instance.unhealthySince === undefined || pid === undefined) return;
    if (Date.now() - instance.unhealthySince < limit) return;
    instance.unhealthySince = undefined;
    instance.lastExit = `restarted: unhealthy for more than ${limit / 1000} s`;
    this.options.log?.('restart-unhealthy', {
      name: instance.spec.name,
      instance: instance.slot.index + 1,
      pid,
    });
    signalGroup(pid, 'SIGKILL');
  }

  private async waitReady(instance: Instance): Promise<void> {
    const deadline = Date.now() + instance.spec.startTimeoutMs;
    while (Date.now() < deadline) {
      if (instance.state === 'failed') break;
      if (instance.state === 'ready') return;
      if (await this.probeOnce(instance)) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const name = `${instance.spec.name}#${instance.slot.index + 1}`;
    throw new Error(
      `${name} did not become ready within ${instance.spec.startTimeoutMs / 1000} s ` +
        `(state ${instance.state}${instance.lastExit === null ? '' : `, ${instance.lastExit}`}).\n` +
        `Last lines of ${this.logFile(instance.spec.name, instance.slot.index)}:\n${this.tail(instance)}`,
    );
  }

  private tail(instance: Instance): string {
    try {
      const text = readFileSync(this.logFile(instance.spec.name, instance.slot.index), 'utf8');
      return text
        .trimEnd()
        .split('\n')
        .slice(-15)
        .map((line) => `  | ${line}`)
        .join('\n');
    } catch {
      return '  | (no log)';
    }
  }

  private startMonitor(): void {
    if (this.monitor !== undefined) return;
    this.monitor = setInterval(() => {
      for (const instance of [...this.instances.values()].flat()) {
        if (instance.probing || !['starting', 'ready', 'unhealthy'].includes(instance.state))
          continue;
        instance.probing = true;
        void this.probeOnce(instance).finally(() => {
          instance.probing = false;
        });
      }
    }, this.probeIntervalMs);
    this.monitor.unref();
  }

  private async stopInstance(instance: Instance): Promise<void> {
    instance.stopping = true;
    if (instance.restartTimer !== undefined) {
      clearTimeout(instance.restartTimer);
      instance.restartTimer = undefined;
    }
    const pid = instance.pid;
    if (pid === undefined) {
      instance.state = 'stopped';
      return;
    }
    instance.state = 'stopping';
    try {
      process.kill(pid, instance.spec.stopSignal);
    } catch {
      // Already gone: the exit handler finishes the job.
    }
    const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), instance.spec.stopTimeoutMs);
    await instance.exited;
    clearTimeout(timer);
    instance.state = 'stopped';
  }

  /**
   * Stops every instance of one component and keeps it stopped (like `docker compose stop x`)
   * until `up` names it again. Tests use it to take a dependency away.
   */
  async stopComponent(name: string): Promise<void> {
    await Promise.all(
      (this.instances.get(name) ?? []).map((instance) => this.stopInstance(instance)),
    );
    this.recordPids();
  }

  /** Changes the number of instances of a scalable component (new ones on free ports). */
  async scale(name: string, count: number, progress: Progress): Promise<void> {
    const spec = this.specs.get(name);
    if (spec === undefined) throw new Error(`unknown component: ${name}`);
    if (!spec.scalable) throw new Error(`${name} runs exactly one instance; only services scale`);
    if (!Number.isInteger(count) || count < 0 || count > MAX_INSTANCES) {
      throw new Error(`instance count must be an integer from 0 to ${MAX_INSTANCES}`);
    }
    this.startMonitor();
    const instances = this.instances.get(name) ?? [];
    this.instances.set(name, instances);
    while (instances.length > count) {
      const instance = instances.pop() as Instance;
      progress(`stopping ${name}#${instance.slot.index + 1}`);
      await this.stopInstance(instance);
    }
    const added: Instance[] = [];
    for (let index = instances.length; index < count; index += 1) {
      const port = index === 0 ? this.options.ctx.port(spec.port) : await this.freePort();
      const instance = new Instance(spec, { index, port });
      instances.push(instance);
      added.push(instance);
      progress(`starting ${name}#${index + 1} on :${port}`);
      this.launch(instance);
    }
    await Promise.all(added.map((instance) => this.waitReady(instance)));
    this.recordPids();
    await this.reconfigureFollowers(name, progress);
  }

  /** Rewrites the config of the components that follow `name`'s instances and reloads them. */
  private async reconfigureFollowers(name: string, progress: Progress): Promise<void> {
    const ports = (this.instances.get(name) ?? []).map((instance) => instance.slot.port);
    for (const spec of this.specs.values()) {
      if (spec.follows?.component !== name) continue;
      await spec.follows.reconfigure(this.options.ctx, ports);
      for (const instance of this.instances.get(spec.name) ?? []) {
        const pid = instance.pid;
        if (pid === undefined || instance.stopping) continue;
        try {
          process.kill(pid, spec.follows.signal);
        } catch {
          // Gone meanwhile: its restart reads the new config.
        }
      }
      progress(`reconfigured ${spec.name} for ${ports.length} ${name} instance(s)`);
    }
  }

  private async freePort(): Promise<number> {
    const used = new Set([...this.instances.values()].flat().map((instance) => instance.slot.port));
    for (;;) {
      const port = await freePort();
      if (!used.has(port)) return port;
    }
  }

  /** Stops everything, in reverse dependency order, and waits until every process group is gone. */
  async down(progress: Progress): Promise<void> {
    this.shuttingDown = true;
    if (this.monitor !== undefined) clearInterval(this.monitor);
    this.monitor = undefined;
    const started = [...this.instances.keys()];
    for (const level of this.levels(started).reverse()) {
      await Promise.all(
        level.map(async (spec) => {
          const instances = this.instances.get(spec.name) ?? [];
          if (instances.some((instance) => instance.pid !== undefined))
            progress(`stopping ${spec.name}`);
          await Promise.all(instances.map((instance) => this.stopInstance(instance)));
          await spec.afterStop?.(this.options.ctx);
        }),
      );
    }
    this.instances.clear();
    this.recordPids();
  }

  status(): InstanceStatus[] {
    const groups = processGroups();
    const now = Date.now();
    return [...this.instances.values()].flat().map((instance) => {
      const pid = instance.pid ?? null;
      const memory = pid === null ? { rssBytes: 0, pssBytes: 0 } : groupMemory(pid, groups);
      return {
        name: instance.spec.name,
        instance: instance.slot.index + 1,
        state: instance.state,
        url: instance.spec.url(this.options.ctx, instance.slot),
        pid,
        port: instance.slot.port,
        restarts: instance.restarts,
        uptimeSeconds:
          pid === null || instance.startedAt === undefined
            ? null
            : Math.round((now - instance.startedAt) / 1000),
        ...memory,
        lastExit: instance.lastExit,
      };
    });
  }

  logFile(name: string, index: number): string {
    return path.join(
      this.options.logsDir,
      index === 0 ? `${name}.log` : `${name}-${index + 1}.log`,
    );
  }

  private recordPids(): void {
    const live = [...this.instances.values()]
      .flat()
      .map((instance) => ({ instance, pid: instance.pid }))
      .filter(
        (entry): entry is { instance: Instance; pid: number } =>
          entry.pid !== undefined && isAlive(entry.pid),
      )
      .map(({ instance, pid }) => ({
        name: instance.spec.name,
        pid,
        command: instance.child?.spawnfile ?? '',
      }));
    writeFileSync(this.options.pidFile, `${JSON.stringify(live, null, 2)}\n`);
  }
}
