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

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on every Linux this stack targets). */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system) a process has used, with those of its children that ended and were
 * waited for (a PostgreSQL backend that exits is counted in its postmaster). 0 for a process gone.
 */
export function processCpuSeconds(pid: number): number {
  const stat = readOrEmpty(`/proc/${pid}/stat`);
  if (stat === '') return 0;
  // Fields 14-17 (utime, stime, cutime, cstime) are 12-15 after the command name and state.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  let ticks = 0;
  for (let index = 11; index <= 14; index += 1) ticks += Number(fields[index] ?? 0);
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** CPU seconds used by every live process of a process group (a component and all its children). */
export function groupCpuSeconds(pgid: number, groups = processGroups()): number {
  return membersOf(pgid, groups).reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
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
