import { constants } from 'node:fs';
import { statSync } from 'node:fs';
import { chown, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run, runChecked } from './run';

/** The unprivileged account that runs servers which refuse root (PostgreSQL, Elasticsearch). */
export interface ServiceUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

export const SERVICE_USER = 'bazaar';

/** When running as root, makes sure the system user exists and returns it; otherwise undefined. */
export async function ensureServiceUser(isRoot: boolean): Promise<ServiceUser | undefined> {
  if (!isRoot) return undefined;
  if ((await run('id', ['-u', SERVICE_USER])).code !== 0) {
    await runChecked('useradd', [
      '--system',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      SERVICE_USER,
    ]);
  }
  const uid = Number((await runChecked('id', ['-u', SERVICE_USER])).trim());
  const gid = Number((await runChecked('id', ['-g', SERVICE_USER])).trim());
  return { name: SERVICE_USER, uid, gid };
}

/** Creates `dir` (and parents) and hands it to the service user when there is one. */
export async function ownedDir(dir: string, user: ServiceUser | undefined, mode = 0o700) {
  // Parents stay traversable (0755); only the leaf is private to its owner.
  await mkdir(path.dirname(dir), { recursive: true, mode: 0o755 });
  await mkdir(dir, { recursive: true, mode });
  if (user !== undefined) await chown(dir, user.uid, user.gid);
}

/** True when every ancestor of `dir` lets other users through (the service user must reach it). */
export function isTraversableByOthers(dir: string): boolean {
  let current = path.resolve(dir);
  for (;;) {
    const stat = statSync(current, { throwIfNoEntry: false });
    if (stat !== undefined && (stat.mode & constants.S_IXOTH) === 0) return false;
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

/** Writes a private (0600) file owned by the service user when there is one. */
export async function writeOwnedFile(file: string, content: string, user: ServiceUser | undefined) {
  await writeFile(file, content, { mode: 0o600 });
  if (user !== undefined) await chown(file, user.uid, user.gid);
}
