import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ComponentSpec, StackContext } from '../src/components';
import { readStackConfig } from '../src/config';
import { httpProbe } from '../src/probes';
import { Supervisor } from '../src/supervisor';

// A component that follows another's instances (the edge follows the gateway's): real child
// processes; the follower counts the reload signals it receives in a file.
const SERVER = `
  const http = require('node:http');
  const fs = require('node:fs');
  if (process.env.HUP_FILE) {
    process.on('SIGHUP', () => fs.appendFileSync(process.env.HUP_FILE, 'hup;'));
  }
  http.createServer((req, res) => res.end(process.env.NAME)).listen(Number(process.env.PORT), '127.0.0.1');
`;

const dirs: string[] = [];
const supervisors: Supervisor[] = [];

afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((supervisor) => supervisor.down(() => undefined)));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

// Below 32768, where the kernel hands out ephemeral ports to client sockets (a listen there can
// fail with EADDRINUSE on a busy machine).
let nextPort = 25_000 + Math.floor(Math.random() * 3_000);

function component(name: string, env: Record<string, string> = {}): ComponentSpec {
  const basePort = nextPort++;
  const portOf = (index: number, port: number) => (index === 0 ? basePort : port);
  return {
    name,
    kind: 'service',
    dependsOn: [],
    tools: [],
    scalable: true,
    port: 'users',
    launch: (_ctx, slot) => ({
      command: process.execPath,
      args: ['-e', SERVER],
      env: { NAME: name, PORT: String(portOf(slot.index, slot.port)), ...env },
      asServiceUser: false,
    }),
    probe: (_ctx, slot) => httpProbe(`http://127.0.0.1:${portOf(slot.index, slot.port)}/`),
    url: (_ctx, slot) => `http://127.0.0.1:${portOf(slot.index, slot.port)}`,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 2_000,
    startTimeoutMs: 4_000,
  };
}

function supervise(specs: ComponentSpec[]) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bazaar-follows-'));
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
    log: () => undefined,
    probeIntervalMs: 100,
    backoff: { initialMs: 50, maxMs: 400, resetAfterMs: 10_000 },
    baseEnv: config.childEnv,
  });
  supervisors.push(supervisor);
  return { supervisor, dir };
}

describe('Supervisor: components that follow another', () => {
  it('rewrites the follower for the scaled instances and sends it its reload signal', async () => {
    const seen: number[][] = [];
    const hupDir = mkdtempSync(path.join(os.tmpdir(), 'bazaar-hup-'));
    dirs.push(hupDir);
    const hupFile = path.join(hupDir, 'hups');
    const follower: ComponentSpec = {
      ...component('front', { HUP_FILE: hupFile }),
      dependsOn: ['api'],
      scalable: false,
      follows: {
        component: 'api',
        reconfigure: (_ctx, ports) => {
          seen.push([...ports]);
          return Promise.resolve();
        },
        signal: 'SIGHUP',
      },
    };
    const { supervisor } = supervise([component('api'), follower]);
    await supervisor.up(undefined, () => undefined);
    const frontPid = supervisor.status().find((s) => s.name === 'front')?.pid;
    const hups = () => (existsSync(hupFile) ? readFileSync(hupFile, 'utf8') : '');

    await supervisor.scale('api', 2, () => undefined);
    const apiPorts = supervisor
      .status()
      .filter((s) => s.name === 'api')
      .map((s) => s.port);
    expect(apiPorts).toHaveLength(2);
    expect(seen).toEqual([apiPorts]);
    await expect.poll(hups).toBe('hup;');

    await supervisor.scale('api', 1, () => undefined);
    expect(seen.at(-1)).toEqual([apiPorts[0]]);
    await expect.poll(hups).toBe('hup;hup;');
    // Reloaded, not restarted.
    const front = supervisor.status().find((s) => s.name === 'front');
    expect(front?.pid).toBe(frontPid);
    expect(front?.state).toBe('ready');
  });
});
