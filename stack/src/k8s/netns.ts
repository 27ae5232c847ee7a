import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { run, runChecked, type RunResult } from '../run';
import { NETNS, NODE_CIDR, NODE_IP, SERVICE_CIDR } from './layout';

const NETNS_PATH = `/run/netns/${NETNS}`;

/** `nsenter --net`, not `ip netns exec`: the latter remounts /sys and hides the cgroup mounts. */
function inNetns(command: string, args: readonly string[]): [string, string[]] {
  return ['nsenter', [`--net=${NETNS_PATH}`, '--', command, ...args]];
}

export function runInNetns(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {},
): Promise<RunResult> {
  const [cmd, full] = inNetns(command, args);
  return run(cmd, full, options);
}

export function netnsExists(): boolean {
  return existsSync(NETNS_PATH);
}

/**
 * The cluster's network: loopback, the node address on a veth pair kept inside, a route for the
 * service range (kube-proxy rewrites those packets) and a black-hole default route, so nothing in
 * the namespace can reach anything outside it and an unknown destination fails at once.
 */
export async function createNetns(): Promise<void> {
  if (!netnsExists()) await runChecked('ip', ['netns', 'add', NETNS]);
  const ip = (...args: string[]) => runChecked('ip', ['-n', NETNS, ...args]);
  await ip('link', 'set', 'lo', 'up');
  const links = await runChecked('ip', ['-n', NETNS, '-o', 'link', 'show']);
  if (!links.includes('bzn0')) {
    await ip('link', 'add', 'bzn0', 'type', 'veth', 'peer', 'name', 'bzn1');
    await ip('addr', 'add', `${NODE_IP}/${NODE_CIDR.split('/')[1]}`, 'dev', 'bzn0');
  }
  await ip('link', 'set', 'bzn0', 'up');
  await ip('link', 'set', 'bzn1', 'up');
  await ip('route', 'replace', SERVICE_CIDR, 'dev', 'bzn0', 'src', NODE_IP);
  await ip('route', 'replace', 'blackhole', 'default');
  // Per-namespace switches: pods' traffic is routed and goes through iptables on the bridge.
  for (const [key, value] of [
    ['net.ipv4.ip_forward', '1'],
    ['net.bridge.bridge-nf-call-iptables', '1'],
    ['net.ipv4.conf.all.route_localnet', '1'],
  ] as const) {
    await runInNetns('sysctl', ['-q', '-w', `${key}=${value}`]);
  }
}

export async function deleteNetns(): Promise<void> {
  if (netnsExists()) await run('ip', ['netns', 'delete', NETNS]);
}

/** Starts a long-running process in the namespace, detached, its output appended to `logFile`. */
export function spawnDaemon(
  command: string,
  args: readonly string[],
  logFile: string,
  options: { env: NodeJS.ProcessEnv; cwd?: string; host?: boolean },
): number {
  const [cmd, full] = options.host === true ? [command, [...args]] : inNetns(command, args);
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(cmd, full, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: options.env,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    if (child.pid === undefined) throw new Error(`could not start ${command}`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}
