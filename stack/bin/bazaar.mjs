#!/usr/bin/env node
// Entry point of `npm start|stop|test|run status|run scale`: makes sure npm dependencies are
// installed, bundles the stack's TypeScript with esbuild (about 100 ms), then runs its CLI.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 18)) {
  console.error(`Bazaar needs Node.js 20.18 or newer; this is ${process.versions.node}.`);
  process.exit(1);
}

const lockfile = path.join(root, 'package-lock.json');
const installed = path.join(root, 'node_modules', '.package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lockfile).mtimeMs) {
  console.log('Installing npm dependencies (npm ci)...');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

const { build } = await import('esbuild');
const external = {
  name: 'external-dependencies',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^[^./]/ }, (args) =>
      args.path.startsWith('@bazaar/') ? undefined : { path: args.path, external: true },
    );
  },
};
await build({
  entryPoints: {
    cli: path.join(root, 'stack', 'src', 'cli.ts'),
    daemon: path.join(root, 'stack', 'src', 'daemon.ts'),
    'k8s-forward': path.join(root, 'stack', 'src', 'k8s', 'forward-main.ts'),
  },
  outdir: path.join(root, 'stack', 'dist'),
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  logLevel: 'warning',
  plugins: [external],
});

const { main } = await import(pathToFileURL(path.join(root, 'stack', 'dist', 'cli.mjs')).href);
await main(process.argv.slice(2));
