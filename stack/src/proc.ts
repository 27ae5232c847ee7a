import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

/** Memory of a group of processes: RSS counts shared pages in every process, PSS divides them. */
export interface Memory {
  readonly rssBytes: number;
  readonly pssBytes: number;
}

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The process-group id of every live process, from /proc/<pid>/stat (field 5). */
export function processGroups(): Map<number, number> {
  const groups = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readOrEmpty(`/proc/${entry}/stat`);
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgrp = Number(fields[2]);
    if (fields[0] !== 'Z' && Number.isInteger(pgrp)) groups.set(Number(entry), pgrp);
  }
  return groups;
}

/** The pids that belong to process group `pgid`. */
export function membersOf(pgid: number, groups = processGroups()): number[] {
  return [...groups].filter(([, group]) => group === pgid).map(([pid]) => pid);
}

function kilobytes(text: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
}

/** Resident memory of every process in a process group (a component and all its children). */
export function groupMemory(pgid: number, groups = processGroups()): Memory {
  let rssBytes = 0;
  let pssBytes = 0;
  for (const pid of membersOf(pgid, groups)) {
    rssBytes += kilobytes(readOrEmpty(`/proc/${pid}/status`), 'VmRSS');
    const rollup = readOrEmpty(`/proc/${pid}/smaps_rollup`);
    pssBytes +=
      rollup === ''
        ? kilobytes(readOrEmpty(`/proc/${pid}/status`), 'VmRSS')
        : kilobytes(rollup, 'Pss');
  }
  return { rssBytes, pssBytes };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends `signal` to a whole process group, ignoring a group that is already gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (typeof address === 'object' && address !== null) resolve(address.port);
        else reject(new Error('no port assigned'));
      });
    });
  });
}
