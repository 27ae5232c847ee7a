import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { StackConfig } from './config';
import { repoRoot } from './config';
import { isAlive, type Memory } from './proc';
import type { InstanceStatus } from './supervisor';

export function runDir(config: StackConfig): string {
  return path.join(config.stateDir, 'run');
}

/** The daemon's unix socket (in the state dir, or in /tmp when that path is too long for a socket). */
export function socketPath(config: StackConfig): string {
  const inState = path.join(runDir(config), 'supervisor.sock');
  if (inState.length < 100) return inState;
  const hash = createHash('sha1').update(config.stateDir).digest('hex').slice(0, 12);
  return path.join(os.tmpdir(), `bazaar-${hash}.sock`);
}

export interface StatusReport {
  readonly profile: string;
  readonly pid: number;
  readonly components: InstanceStatus[];
  /** The supervisor daemon's own memory. */
  readonly supervisor?: Memory;
}

function call(
  config: StackConfig,
  method: string,
  route: string,
  body?: unknown,
  onLine?: (line: Record<string, unknown>) => void,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        socketPath: socketPath(config),
        method,
        path: route,
        headers: { 'content-type': 'application/json' },
      },
      (response) => {
        let text = '';
        let pending = '';
        response.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk;
          if (onLine === undefined) return;
          pending += chunk;
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          for (const line of lines)
            if (line.trim() !== '') onLine(JSON.parse(line) as Record<string, unknown>);
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** The daemon's status, or undefined when no daemon of this profile is running. */
export async function fetchStatus(config: StackConfig): Promise<StatusReport | undefined> {
  try {
    const { status, text } = await call(config, 'GET', '/status');
    return status === 200 ? (JSON.parse(text) as StatusReport) : undefined;
  } catch {
    return undefined;
  }
}

/** Runs a streamed daemon operation, forwarding its progress lines; throws when it fails. */
export async function operate(
  config: StackConfig,
  route: '/up' | '/scale' | '/down',
  body: unknown,
  progress: (message: string) => void,
): Promise<void> {
  let outcome: { ok?: boolean; error?: string } = {};
  const { status, text } = await call(config, 'POST', route, body, (line) => {
    if (typeof line.progress === 'string') progress(line.progress);
    if (typeof line.ok === 'boolean') outcome = line;
  });
  if (status !== 200) throw new Error(`supervisor refused ${route}: ${text}`);
  if (outcome.ok !== true)
    throw new Error(outcome.error ?? `supervisor ended ${route} without a result`);
}

export function daemonPid(config: StackConfig): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(runDir(config), 'supervisor.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Starts this profile's daemon in the background (detached from the terminal) unless it runs. */
export async function ensureDaemon(config: StackConfig): Promise<void> {
  if ((await fetchStatus(config)) !== undefined) return;
  const run = runDir(config);
  mkdirSync(run, { recursive: true });
  mkdirSync(path.join(config.stateDir, 'logs'), { recursive: true });
  const logFd = openSync(path.join(config.stateDir, 'logs', 'supervisor.log'), 'a');
  try {
    const child = spawn(
      process.execPath,
      [path.join(repoRoot, 'stack', 'dist', 'daemon.mjs'), '--profile', config.profile],
      { detached: true, stdio: ['ignore', logFd, logFd], cwd: repoRoot },
    );
    child.unref();
  } finally {
    closeSync(logFd);
  }
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if ((await fetchStatus(config)) !== undefined) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(
    `the supervisor did not start; see ${path.join(config.stateDir, 'logs', 'supervisor.log')}`,
  );
}
