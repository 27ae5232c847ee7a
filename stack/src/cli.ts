import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { benchStack } from './bench';
import { buildServices } from './build';
import { componentSpecs } from './components';
import { readStackConfig, repoRoot, type StackConfig } from './config';
import { daemonPid, ensureDaemon, fetchStatus, operate, type StatusReport } from './control';
import { isAlive } from './proc';
import { reapRecorded } from './supervisor';
import { vitestArgsFor } from './test-args';
import { ensureTools, type ToolName } from './tools';

const USAGE = `Usage: npm <command> [-- options]
  npm start                 install what is missing, start every part, return when all are ready
  npm stop                  stop every part this stack started
  npm run status [-- --json]
  npm run scale -- <service>=<n> [...]
  npm run logs -- <component>
  npm test                  start the test profile, run every suite, stop it (--keep leaves it up)
  npm run images [-- --push] build the container images (deploy/images), push them to the registry
  npm run k8s -- <command>  the local Kubernetes cluster: up, deploy, status, down, test (-- help)
Options: --profile dev|test (default dev, or BAZAAR_PROFILE)`;

const started = Date.now();
const say = (message: string) =>
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${message}`);

function option(argv: readonly string[], name: string): string | undefined {
  const index = argv.indexOf(name);
  return index >= 0 ? argv[index + 1] : undefined;
}

const MB = 1024 * 1024;

function printTable(report: StatusReport) {
  const rows = report.components.map((c) => [
    c.instance > 1 ? `${c.name}#${c.instance}` : c.name,
    c.state,
    c.url,
    String(c.pid ?? '-'),
    `${(c.pssBytes / MB).toFixed(0)} MB`,
    String(c.restarts),
  ]);
  const header = ['COMPONENT', 'STATE', 'URL', 'PID', 'MEMORY', 'RESTARTS'];
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const format = (row: readonly string[]) =>
    row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ');
  console.log(format(header));
  for (const row of rows) console.log(format(row));
  const total = report.components.reduce((sum, c) => sum + c.pssBytes, 0);
  console.log(`total memory (proportional set size): ${(total / MB).toFixed(0)} MB`);
}

async function start(config: StackConfig, names?: string[]) {
  say(`Bazaar local stack, profile "${config.profile}", state in ${config.stateDir}`);
  const needed = new Set<ToolName>(
    componentSpecs
      .filter((spec) => names === undefined || names.includes(spec.name))
      .flatMap((spec) => spec.tools),
  );
  await ensureTools(needed, config, say);
  const services = await buildServices();
  say(`built ${services.length} service bundle(s): ${services.join(', ') || '-'}`);
  await ensureDaemon(config);
  await operate(config, '/up', names === undefined ? {} : { names }, (message) => say(message));
  const report = await fetchStatus(config);
  if (report !== undefined) printTable(report);
  say('all components are ready');
}

/** Processes of this profile that outlived a stop (there should be none). */
function leftovers(config: StackConfig): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(`${config.stateDir}/`)) found.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

async function stop(config: StackConfig) {
  const pid = daemonPid(config);
  if ((await fetchStatus(config)) !== undefined) {
    await operate(config, '/down', {}, say);
    const deadline = Date.now() + 10_000;
    while (pid !== undefined && isAlive(pid) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } else {
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    for (const orphan of reapRecorded(path.join(config.stateDir, 'run', 'children.json'))) {
      say(`stopped ${orphan.name} (pid ${orphan.pid}) left behind by a supervisor that died`);
    }
  }
  const left = leftovers(config);
  for (const leftover of left) process.kill(leftover, 'SIGKILL');
  say(
    left.length === 0
      ? 'stopped; no process left behind'
      : `stopped; killed ${left.length} stray process(es)`,
  );
}

async function scale(config: StackConfig, args: readonly string[]) {
  const requests = args.filter((arg) => arg.includes('='));
  if (requests.length === 0) throw new Error('usage: npm run scale -- <service>=<n>');
  if ((await fetchStatus(config)) === undefined)
    throw new Error('the stack is not running: npm start first');
  for (const request of requests) {
    const [name = '', count = ''] = request.split('=');
    await operate(config, '/scale', { name, count: Number(count) }, say);
  }
  const report = await fetchStatus(config);
  if (report !== undefined) printTable(report);
}

async function status(config: StackConfig, json: boolean) {
  const report = (await fetchStatus(config)) ?? { profile: config.profile, pid: 0, components: [] };
  if (json) {
    console.log(
      JSON.stringify(
        { profile: report.profile, stateDir: config.stateDir, components: report.components },
        null,
        2,
      ),
    );
  } else if (report.components.length === 0) {
    console.log(`The ${config.profile} stack is not running (npm start).`);
  } else {
    printTable(report);
  }
}

function runVitest(config: StackConfig, args: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(path.join(repoRoot, 'node_modules', '.bin', 'vitest'), ['run', ...args], {
      cwd: repoRoot,
      stdio: 'inherit',
      env: { ...config.hostEnv, BAZAAR_PROFILE: config.profile },
    });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

async function test(argv: readonly string[]) {
  const config = readStackConfig('test');
  const keep = argv.includes('--keep');
  const vitestArgs = vitestArgsFor(argv);
  let code = 1;
  try {
    await start(config);
    say('running every suite (vitest: unit + integration)');
    code = await runVitest(config, vitestArgs);
  } finally {
    if (!keep) await stop(config);
  }
  process.exitCode = code;
}

/** Benchmark files of packages and services: `<workspace>/bench/*.bench.ts`, run with tsx. */
function benchFiles(): string[] {
  const files: string[] = [];
  for (const group of ['packages', 'services']) {
    for (const workspace of readdirSync(path.join(repoRoot, group))) {
      const dir = path.join(repoRoot, group, workspace, 'bench');
      if (!existsSync(dir)) continue;
      for (const file of readdirSync(dir))
        if (file.endsWith('.bench.ts')) files.push(path.join(dir, file));
    }
  }
  return files.sort();
}

/** The suites write tables as plain markdown; the format gate of `npm run check` wants them aligned. */
async function formatBenchmarksFile(): Promise<void> {
  const prettier = path.join(repoRoot, 'node_modules', '.bin', 'prettier');
  if (!existsSync(prettier)) return;
  await new Promise<void>((resolve) => {
    spawn(prettier, ['--write', '--log-level', 'warn', 'docs/benchmarks.md'], {
      cwd: repoRoot,
      stdio: 'inherit',
    }).on('close', () => resolve());
  });
}

/**
 * `npm run bench [-- <name>...]`: every suite (or those whose file or workspace name matches) on the
 * `bench` profile (its own ports and data, so running stacks are not disturbed), each writing its own section of docs/benchmarks.md; the stack's own suite runs last
 * because it stops and starts the stack.
 */
async function bench(filters: readonly string[]) {
  const config = readStackConfig('bench');
  const matches = (name: string) =>
    filters.length === 0 || filters.some((filter) => name.includes(filter));
  const files = benchFiles().filter((file) => matches(path.relative(repoRoot, file)));
  if (files.length > 0) await start(config);
  let failed = 0;
  for (const file of files) {
    say(`bench ${path.relative(repoRoot, file)}`);
    const code = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', file], {
        cwd: repoRoot,
        stdio: 'inherit',
        env: { ...config.hostEnv, BAZAAR_PROFILE: config.profile },
      });
      child.on('close', (exitCode) => resolve(exitCode ?? 1));
    });
    if (code !== 0) failed += 1;
  }
  if (matches('stack')) await benchStack(config, { start, stop, say });
  else if (files.length > 0) await stop(config);
  await formatBenchmarksFile();
  if (failed > 0) throw new Error(`${failed} benchmark suite(s) failed`);
}

export async function main(argv: readonly string[]): Promise<void> {
  const [command = 'help', ...rest] = argv;
  const profile = option(rest, '--profile');
  const positional = rest.filter((arg, i) => !arg.startsWith('--') && rest[i - 1] !== '--profile');
  try {
    switch (command) {
      case 'start':
        return await start(
          readStackConfig(profile),
          positional.length > 0 ? positional : undefined,
        );
      case 'stop':
        return await stop(readStackConfig(profile));
      case 'status':
        return await status(readStackConfig(profile), rest.includes('--json'));
      case 'scale':
        return await scale(readStackConfig(profile), positional);
      case 'build':
        say(`built: ${(await buildServices()).join(', ')}`);
        return;
      case 'logs': {
        const config = readStackConfig(profile);
        const file = path.join(config.stateDir, 'logs', `${positional[0] ?? 'supervisor'}.log`);
        console.log(
          existsSync(file)
            ? readFileSync(file, 'utf8').split('\n').slice(-200).join('\n')
            : `no log at ${file}`,
        );
        return;
      }
      case 'test':
        return await test(rest);
      case 'bench':
        return await bench(positional);
      case 'k8s': {
        const { k8sMain } = await import('./k8s/cli');
        return await k8sMain(rest, say);
      }
      case 'images': {
        const { imagesMain } = await import('./k8s/images');
        return await imagesMain(rest, say);
      }
      default:
        console.log(USAGE);
        if (command !== 'help') process.exitCode = 2;
    }
  } catch (error) {
    console.error(`\n${command} failed: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}
