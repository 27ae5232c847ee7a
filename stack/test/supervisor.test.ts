import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive } from '../src/proc';
import { cleanUp, component, supervise, until } from './supervisor.fixture';

// Real child processes (small Node.js HTTP servers), not mocks: the supervisor's whole job is
// process handling, so that is what these tests exercise.
afterEach(cleanUp);

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
