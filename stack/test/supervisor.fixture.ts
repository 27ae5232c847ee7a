import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ComponentSpec, StackContext } from '../src/components';
import { readStackConfig } from '../src/config';
import { devPorts } from '../src/ports';
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
  if (process.env.HUP_FILE) {
    process.on('SIGHUP', () => fs.appendFileSync(process.env.HUP_FILE, 'hup;'));
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

/** Stops every supervisor a test started and deletes its scratch folders (call in afterEach). */
export async function cleanUp(): Promise<void> {
  await Promise.all(supervisors.splice(0).map((supervisor) => supervisor.down(() => undefined)));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A scratch folder removed by {@link cleanUp}. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

// Below 32768, where the kernel hands out ephemeral ports to client sockets (a listen there can
// fail with EADDRINUSE on a busy machine), and never a port of the running test stack (with
// BAZAAR_TEST_PORT_OFFSET=2200 its Prometheus listens on 21290, inside this range).
const stackPorts = new Set(
  Object.values(devPorts).map((port) => port + readStackConfig('test').portOffset),
);
let lastPort = 21_000 + Math.floor(Math.random() * 3_000);
function nextPort(): number {
  do lastPort += 1;
  while (stackPorts.has(lastPort));
  return lastPort;
}

/** A scalable component: a small Node.js HTTP server answering its name (see SERVER). */
export function component(
  name: string,
  options: {
    dependsOn?: string[];
    env?: Record<string, string>;
    startTimeoutMs?: number;
    restartWhenUnhealthyForMs?: number;
  } = {},
) {
  const basePort = nextPort();
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

/** A supervisor over `specs` in a scratch folder, with fast probes and backoff; `events` collects its log. */
export function supervise(specs: ComponentSpec[], events: string[] = []) {
  const dir = scratchDir('bazaar-supervisor-');
  const config = { ...readStackConfig('test'), stateDir: dir };
  const ctx: StackContext = {
    config,
    secrets: {
      postgresPassword: 'x',
      rabbitmqPassword: 'x',
      redisPassword: 'x',
      alertWebhookToken: 'x',
      adminPassword: 'x',
    },
    tools: {},
    serviceUser: undefined,
    port: () => nextPort(),
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

/** Polls a synchronous check until it returns a value. */
export async function until<T>(check: () => T | undefined, timeoutMs = 8_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
