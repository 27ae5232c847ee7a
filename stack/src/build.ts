import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';
import { repoRoot } from './config';

/**
 * Keeps npm dependencies external (resolved from node_modules at run time, native modules intact)
 * while bundling our own workspace packages, which are published as TypeScript source.
 */
const externalDependencies: Plugin = {
  name: 'external-dependencies',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^[^./]/ }, (args) =>
      args.path.startsWith('@bazaar/') ? undefined : { path: args.path, external: true },
    );
  },
};

/** Services that have a composition root (`src/main.ts`). */
export function serviceNames(): string[] {
  const dir = path.join(repoRoot, 'services');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((name) => existsSync(path.join(dir, name, 'src', 'main.ts')));
}

/** Bundles one entry point into a single ESM file with a source map. */
export async function bundle(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    sourcemap: true,
    logLevel: 'warning',
    plugins: [externalDependencies],
    // Bundled CommonJS shims expect `require`; ESM output gets one from createRequire.
    banner: {
      js: "import { createRequire as bazaarCreateRequire } from 'node:module'; const require = bazaarCreateRequire(import.meta.url);",
    },
  });
}

/** Entry points a service may have besides `main`: the Helm chart's Jobs run them. */
const jobEntries = ['migrate', 'bootstrap-admin'] as const;

/**
 * Builds every service to `services/<name>/dist/main.mjs` (what the stack and the images run), and
 * each `src/<job entry>.ts` it has to `dist/<job entry>.mjs` beside it.
 */
export async function buildServices(): Promise<string[]> {
  const names = serviceNames();
  await Promise.all(
    names.flatMap((name) => {
      const dir = path.join(repoRoot, 'services', name);
      return ['main', ...jobEntries]
        .filter((entry) => existsSync(path.join(dir, 'src', `${entry}.ts`)))
        .map((entry) =>
          bundle(path.join(dir, 'src', `${entry}.ts`), path.join(dir, 'dist', `${entry}.mjs`)),
        );
    }),
  );
  return names;
}
