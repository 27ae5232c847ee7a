import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isTraversableByOthers } from './service-user';

/** The repository root: `stack/src` and the bundled `stack/dist` are both two levels below it. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

export type ProfileName = 'dev' | 'test' | 'bench';

/** Everything the local stack reads from its environment, read once, here. */
export interface StackConfig {
  readonly profile: ProfileName;
  /** Root of all project-owned state: tools (shared by profiles) and one folder per profile. */
  readonly home: string;
  readonly toolsDir: string;
  readonly stateDir: string;
  /** Skip installing system packages (the caller promises they are there). */
  readonly skipInstall: boolean;
  /** Variables handed through to services that ask for them (never logged). */
  readonly passthrough: Readonly<Record<string, string>>;
  readonly isRoot: boolean;
  /** Added to every port of the profile (0 for dev). */
  readonly portOffset: number;
  /** The caller's whole environment, for commands run on its behalf (apt-get, go, vitest). */
  readonly hostEnv: Readonly<Record<string, string | undefined>>;
  /** The environment every supervised process starts from (launches add their own variables). */
  readonly childEnv: Readonly<Record<string, string>>;
}

/** The `bench` profile (npm run bench) runs beside dev and test stacks without disturbing them. */
const BENCH_PORT_OFFSET = 3000;
/**
 * Every port stays below 32768, where Linux starts handing out ephemeral ports to outgoing
 * connections: a server restarting on a port inside that range can find it taken by some client's
 * socket (EADDRINUSE), which is exactly what a busy test run produces.
 */
const MAX_PORT_OFFSET = 15000;

const PASSTHROUGH = ['ADMIN_EMAIL', 'ADMIN_PASSWORD'] as const;

export function readStackConfig(
  profileOverride?: string,
  env: NodeJS.ProcessEnv = process.env,
): StackConfig {
  const rawProfile = profileOverride ?? env.BAZAAR_PROFILE ?? 'dev';
  if (rawProfile !== 'dev' && rawProfile !== 'test' && rawProfile !== 'bench') {
    throw new Error(`BAZAAR_PROFILE must be "dev", "test" or "bench", got "${rawProfile}"`);
  }
  const isRoot = os.userInfo().uid === 0;
  const testOffset = Number(env.BAZAAR_TEST_PORT_OFFSET ?? '1000');
  if (!Number.isInteger(testOffset) || testOffset < 1000 || testOffset > MAX_PORT_OFFSET) {
    throw new Error(
      `BAZAAR_TEST_PORT_OFFSET must be an integer from 1000 to ${MAX_PORT_OFFSET}, got "${env.BAZAAR_TEST_PORT_OFFSET}"`,
    );
  }
  const home = path.resolve(env.BAZAAR_HOME ?? defaultHome(isRoot));
  const passthrough: Record<string, string> = {};
  for (const name of PASSTHROUGH) {
    const value = env[name];
    if (value !== undefined && value !== '') passthrough[name] = value;
  }
  return Object.freeze({
    profile: rawProfile,
    home,
    // Several checkouts (e.g. git worktrees) may share one tools dir: FerretDB and Jaeger are built once.
    toolsDir: path.resolve(env.BAZAAR_TOOLS_DIR ?? path.join(home, 'tools')),
    stateDir: path.join(home, rawProfile),
    skipInstall: env.BAZAAR_SKIP_INSTALL === '1',
    passthrough: Object.freeze(passthrough),
    isRoot,
    portOffset: { dev: 0, test: testOffset, bench: BENCH_PORT_OFFSET }[rawProfile],
    hostEnv: Object.freeze({ ...env }),
    childEnv: Object.freeze({
      PATH: env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      LANG: 'C.UTF-8',
      TZ: 'UTC',
    }),
  });
}

/**
 * State lives in the checkout's `.bazaar/`. Running as root, servers run as an unprivileged user
 * that must reach that folder; when the checkout is inside a private directory (e.g. /root), the
 * state moves to /var/lib/bazaar/<checkout hash> instead.
 */
function defaultHome(isRoot: boolean): string {
  const inCheckout = path.join(repoRoot, '.bazaar');
  if (!isRoot || isTraversableByOthers(repoRoot)) return inCheckout;
  const hash = createHash('sha1').update(repoRoot).digest('hex').slice(0, 10);
  return path.join('/var/lib/bazaar', hash);
}
