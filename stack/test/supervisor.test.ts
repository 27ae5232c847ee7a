import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ComponentSpec, StackContext } from '../src/components';
import { readStackConfig } from '../src/config';
import { isAlive } from '../src/proc';
import { httpProbe } from '../src/probes';
import { Supervisor } from '../src/supervisor';

// Real child processes (small Node.js HTTP servers), not mocks: the supervisor's whole job is
// process handling, so that is what these tests exercise.
const SERVER = `
  const http = require('node:http');
  const { spawn } = require('node:child_process');
  const fs = require('node:fs');
  if (process.env.GRANDCHILD_FILE) {
    const grandchild = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    fs.writeFileSync(process.env.GRANDCHILD_FILE, String(grandchild.pid));
  }
  if (process.env.CRASH) { console.error('boom: configured to crash'); process.exit(3); }
  let answered = 0;
  http.createServer((req, res) => {
    // WEDGE_AFTER=n: answer n requests, then hang like a wedged process (alive, never answering).
    answered += 1;
    if (process.env.WEDGE_AFTER && answered > Number(process.env.WEDGE_AFTER)) return;
    res.end(process.env.NAME);
  }).listen(Number(process.env.PORT), '127.0.0.1');
`;

const dirs: string[] = [];
const supervisors: Supervisor[] = [];

afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((supervisor) => supervisor.down(() => undefined)));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

// Below 32768, where the kernel hands out ephemeral ports to client sockets (a listen there can
// fail with EADDRINUSE on a busy machine).
let nextPort = 21_000 + Math.floor(Math.random() * 3_000);

function component(
  name: string,
  options: {
    dependsOn?: string[];
    env?: Record<string, string>;
    startTimeoutMs?: number;
    restartWhenUnhealthyForMs?: number;
  } = {},
) {
  const basePort = nextPort++;
  const spec: ComponentSpec = {
    name,
    kind: 'service',
    dependsOn: options.dependsOn ?? [],
    tools: [],
    scalable: true,
    port: 'users',
    launch: (_ctx, slot) => ({
      command: process.execPath,
      args: ['-e', SERVER],
      env: { NAME: name, PORT: String(slot.index === 0 ? basePort : slot.port), ...options.env },
      asServiceUser: false,
    }),
    probe: (_ctx, slot) =>
      httpProbe(`http://127.0.0.1:${slot.index === 0 ? basePort : slot.port}/`),
    url: (_ctx, slot) => `http://127.0.0.1:${slot.index === 0 ? basePort : slot.port}`,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 2_000,
    startTimeoutMs: options.startTimeoutMs ?? 4_000,
    ...(options.restartWhenUnhealthyForMs === undefined
      ? {}
      : { restartWhenUnhealthyForMs: options.restartWhenUnhealthyForMs }),
  };
  return spec;
}

function supervise(specs: ComponentSpec[], events: string[] = []) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bazaar-supervisor-'));
  dirs.push(dir);
  const config = { ...readStackConfig('test'), stateDir: dir };
  const ctx: StackContext = {
    config,
    secrets: { postgresPassword: 'x', rabbitmqPassword: 'x', redisPassword: 'x' },
    tools: {},
    serviceUser: undefined,
    port: () => nextPort++,
    dataDir: (name) => path.join(dir, name),
  };
  const supervisor = new Supervisor({
    specs,
    ctx,
    logsDir: path.join(dir, 'logs'),
    pidFile: path.join(dir, 'children.json'),
    log: (event, fields) => events.push(`${event} ${String(fields.name)}`),
    probeIntervalMs: 100,
    backoff: { initialMs: 50, maxMs: 400, resetAfterMs: 10_000 },
    baseEnv: config.childEnv,
  });
  supervisors.push(supervisor);
  return { supervisor, dir };
}

async function until<T>(check: () => T | undefined, timeoutMs = 8_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('Supervisor', () => {
  it('orders components by dependency, even against declaration order', () => {
    const { supervisor } = supervise([
      component('app', { dependsOn: ['cache', 'db'] }),
      component('cache', { dependsOn: ['db'] }),
      component('db'),
    ]);
    expect(supervisor.levels().map((level) => level.map((spec) => spec.name))).toEqual([
      ['db'],
      ['cache'],
      ['app'],
    ]);
  });

  it('refuses a dependency cycle', () => {
    const { supervisor } = supervise([
      component('a', { dependsOn: ['b'] }),
      component('b', { dependsOn: ['a'] }),
    ]);
    expect(() => supervisor.levels()).toThrow(/cycle/);
  });

  it('starts a dependant only after its dependency is ready', async () => {
    const events: string[] = [];
    const { supervisor } = supervise(
      [component('web', { dependsOn: ['db'] }), component('db')],
      events,
    );
    await supervisor.up(undefined, () => undefined);
    expect(events.indexOf('ready db')).toBeGreaterThanOrEqual(0);
    expect(events.indexOf('ready db')).toBeLessThan(events.indexOf('spawned web'));
    expect(supervisor.status().map((s) => [s.name, s.state])).toEqual([
      ['db', 'ready'],
      ['web', 'ready'],
    ]);
  });

  it('restarts a process killed with SIGKILL and reports it ready again', async () => {
    const { supervisor } = supervise([component('db')]);
    await supervisor.up(undefined, () => undefined);
    const before = supervisor.status()[0];
    expect(before?.pid).toBeTypeOf('number');
    process.kill(before?.pid ?? 0, 'SIGKILL');
    const after = await until(() => {
      const now = supervisor.status()[0];
      return now?.state === 'ready' && now.pid !== before?.pid ? now : undefined;
    });
    expect(after.restarts).toBe(1);
    expect(isAlive(before?.pid ?? 0)).toBe(false);
  });

  it('restarts a process that stays alive but fails its probe for too long', async () => {
    const { supervisor } = supervise([
      component('wedged', { env: { WEDGE_AFTER: '2' }, restartWhenUnhealthyForMs: 500 }),
    ]);
    await supervisor.up(undefined, () => undefined);
    const first = supervisor.status()[0];
    const restarted = await until(() => {
      const now = supervisor.status()[0];
      return now !== undefined && now.restarts > 0 && now.pid !== first?.pid ? now : undefined;
    });
    expect(restarted.lastExit ?? '').toMatch(/unhealthy for more than 0.5 s|signal SIGKILL/);
    expect(isAlive(first?.pid ?? 0)).toBe(false);
  });

  it('leaves an unhealthy process alone when no liveness limit is set', async () => {
    const { supervisor } = supervise([component('patient', { env: { WEDGE_AFTER: '2' } })]);
    await supervisor.up(undefined, () => undefined);
    await until(() => (supervisor.status()[0]?.state === 'unhealthy' ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(supervisor.status()[0]).toMatchObject({ state: 'unhealthy', restarts: 0 });
  });

  it('stops a whole process group: no grandchild outlives a stop', async () => {
    const file = path.join(os.tmpdir(), `bazaar-grandchild-${process.pid}-${Date.now()}.pid`);
    const { supervisor } = supervise([component('forker', { env: { GRANDCHILD_FILE: file } })]);
    await supervisor.up(undefined, () => undefined);
    const grandchild = Number(
      await until(() => {
        try {
          return readFileSync(file, 'utf8') || undefined;
        } catch {
          return undefined;
        }
      }),
    );
    rmSync(file, { force: true });
    expect(isAlive(grandchild)).toBe(true);
    await supervisor.down(() => undefined);
    await until(() => (isAlive(grandchild) ? undefined : true), 3_000);
    expect(supervisor.status()).toEqual([]);
  });

  it('reports a component that cannot start, with the end of its log', async () => {
    const { supervisor } = supervise([
      component('broken', { env: { CRASH: '1' }, startTimeoutMs: 1_500 }),
    ]);
    await expect(supervisor.up(undefined, () => undefined)).rejects.toThrow(
      /boom: configured to crash/,
    );
    expect(supervisor.status()[0]?.restarts).toBeGreaterThan(1);
  });

  it('scales a service up on distinct ports and back down', async () => {
    const { supervisor } = supervise([component('api')]);
    await supervisor.up(undefined, () => undefined);
    await supervisor.scale('api', 3, () => undefined);
    const three = supervisor.status();
    expect(three.map((s) => s.state)).toEqual(['ready', 'ready', 'ready']);
    expect(new Set(three.map((s) => s.port)).size).toBe(3);
    for (const instance of three) {
      expect(await (await fetch(instance.url)).text()).toBe('api');
    }
    await supervisor.scale('api', 1, () => undefined);
    expect(supervisor.status().map((s) => s.instance)).toEqual([1]);
    expect(isAlive(three[1]?.pid ?? 0)).toBe(false);
    expect(isAlive(three[2]?.pid ?? 0)).toBe(false);
    await expect(supervisor.scale('api', 99, () => undefined)).rejects.toThrow(/0 to 16/);
  });
});
